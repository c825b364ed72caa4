import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import type { Dispatcher } from 'undici';
import type { Balancer, Target, Upstreams } from './upstreams';

export type ForwardOptions = {
  method: string;
  /** Canonical path below the API base path, plus query: appended to the target's prefix. */
  pathAndQuery: string;
  headers: string[];
  /** The client's body stream, or null when the request has none. */
  body: Readable | null;
  balancer: Balancer;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  /** Whole exchange, including the response body. */
  totalTimeoutMs: number;
  /** Attempts after the first, idempotent bodiless requests only. */
  retries: number;
};

export type ForwardOutcome =
  | { ok: true; response: Dispatcher.ResponseData; target: Target; /** Clears the total-time timer; call when the body ends. */ done: () => void }
  | { ok: false; status: 502 | 503 | 504; code: 'bad_gateway' | 'unavailable' | 'gateway_timeout'; message: string; target: Target | null };

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** Errors that mean the upstream never processed the request, so a retry elsewhere is safe. */
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'EPIPE']);
const TIMEOUT_ERRORS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

export function isRetryable(method: string, hasBody: boolean): boolean {
  return !hasBody && IDEMPOTENT.has(method);
}

/**
 * Sends the request to one of the API's targets. Retries go to a different target, only for
 * idempotent methods without a body, and only on errors before any response byte arrived.
 */
export async function forwardToUpstream(upstreams: Upstreams, o: ForwardOptions): Promise<ForwardOutcome> {
  const started = Date.now();
  const maxAttempts = isRetryable(o.method, o.body !== null) ? 1 + o.retries : 1;
  let tried: Set<Target> | null = null;
  let last: ForwardOutcome | null = null;
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const target = upstreams.pick(o.balancer, tried);
    if (!target) break;
    const remaining = o.totalTimeoutMs - (Date.now() - started);
    if (remaining <= 0) return { ok: false, status: 504, code: 'gateway_timeout', message: 'the upstream did not answer in time', target };
    const pool = upstreams.pool(target, o.connectTimeoutMs);
    try {
      // No AbortController per request (measurable on the hot path): the header wait is bounded by
      // headersTimeout, the body by a deadline timer armed once headers are in (see bodyDeadline).
      const response = await pool.request({
        method: o.method as Dispatcher.HttpMethod,
        path: target.pathPrefix + o.pathAndQuery,
        headers: o.headers,
        body: o.body,
        headersTimeout: Math.min(o.headersTimeoutMs, remaining),
        bodyTimeout: remaining,
      });
      upstreams.reportSuccess(target);
      // A small body of declared length is already (nearly) in our buffers; the idle bodyTimeout
      // covers a stall, so only streams of unknown or large size get a deadline timer.
      const len = response.headers['content-length'];
      if (typeof len === 'string' && len.length < 6 && Number(len) <= SMALL_BODY) return { ok: true, response, target, done: noop };
      const left = o.totalTimeoutMs - (Date.now() - started);
      return { ok: true, response, target, done: bodyDeadline(response.body, left) };
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      const timedOut = TIMEOUT_ERRORS.has(code);
      upstreams.reportFailure(target);
      last = timedOut
        ? { ok: false, status: 504, code: 'gateway_timeout', message: 'the upstream did not answer in time', target }
        : { ok: false, status: 502, code: 'bad_gateway', message: 'the upstream could not be reached', target };
      // A headers timeout means the upstream may be working on it: never resend.
      if (!CONNECT_ERRORS.has(code)) break;
      (tried ??= new Set()).add(target);
    }
  }
  return last ?? { ok: false, status: 503, code: 'unavailable', message: 'the API has no upstream target', target: null };
}

const noop = () => undefined;
const SMALL_BODY = 64 * 1024;

/** Destroys a response body still streaming at the route's total deadline; returns the disarm. */
function bodyDeadline(body: Readable, leftMs: number): () => void {
  if (leftMs <= 0) {
    body.destroy(new Error('upstream response exceeded the route timeout'));
    return noop;
  }
  const timer = setTimeout(() => body.destroy(new Error('upstream response exceeded the route timeout')), leftMs);
  return () => clearTimeout(timer);
}

/** Counts request body bytes and fails the stream once it passes `limit`. */
export class BodyLimit extends Transform {
  bytes = 0;
  exceeded = false;
  constructor(private readonly limit: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) {
      this.exceeded = true;
      cb(new Error('request body too large'));
      return;
    }
    cb(null, chunk);
  }
}

export function requestBody(req: IncomingMessage, maxBytes: number): { body: Readable | null; limiter: BodyLimit | null; declared: number } {
  const te = req.headers['transfer-encoding'];
  const cl = req.headers['content-length'];
  if (te === undefined) {
    const declared = cl === undefined ? 0 : Number(cl);
    return { body: declared > 0 ? req : null, limiter: null, declared };
  }
  const limiter = new BodyLimit(maxBytes);
  req.pipe(limiter);
  req.on('error', (err) => limiter.destroy(err));
  return { body: limiter, limiter, declared: -1 };
}
