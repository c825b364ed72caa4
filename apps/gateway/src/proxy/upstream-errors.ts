/** Errors that mean the upstream never processed the request, so a retry elsewhere is safe. */
export const CONNECT_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'EPIPE',
]);
export const TIMEOUT_ERRORS = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
  'TG_READ_TIMEOUT',
  'TG_QUEUE_TIMEOUT',
]);

/** The upstream sent nothing for the read timeout: before its headers, or between two body reads. */
export class ReadTimeoutError extends Error {
  readonly code = 'TG_READ_TIMEOUT';
}

/**
 * No pool connection came free within the read timeout: the request was never sent. That is
 * the gateway's own connection limit, not the target failing, so it takes no target out of
 * rotation (the requests holding the connections report a slow target themselves).
 */
export class QueueTimeoutError extends Error {
  readonly code = 'TG_QUEUE_TIMEOUT';
}
