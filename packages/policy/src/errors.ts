/**
 * The one error-code list for every Tollgate HTTP surface. Bodies are always
 * `{ "error": { "code", "message", "requestId" } }`.
 */
export const ERROR_STATUS = {
  bad_request: 400,
  invalid_path: 400,
  unauthorized: 401,
  invalid_key: 401,
  forbidden: 403,
  insufficient_scope: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  uri_too_long: 414,
  unprocessable: 422,
  rate_limited: 429,
  quota_exceeded: 429,
  headers_too_large: 431,
  internal: 500,
  bad_gateway: 502,
  unavailable: 503,
  gateway_timeout: 504,
} as const;
export type ErrorCode = keyof typeof ERROR_STATUS;

export type ErrorBody = { error: { code: ErrorCode; message: string; requestId?: string } & Record<string, unknown> };

export function errorBody(code: ErrorCode, message: string, requestId?: string, extra?: Record<string, unknown>): ErrorBody {
  return { error: { code, message, ...(requestId ? { requestId } : {}), ...extra } };
}
