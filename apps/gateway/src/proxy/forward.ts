import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { UpstreamExchange } from './exchange';
import { CONNECT_ERRORS, QueueTimeoutError, TIMEOUT_ERRORS } from './upstream-errors';
import type { Balancer, Target, Upstreams } from './upstreams';

export { UpstreamExchange, type BodyTap } from './exchange';
export { BodyLimit, requestBody } from './request-body';

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
  | { ok: true; exchange: UpstreamExchange; target: Target }
  | { ok: false; status: 502 | 503 | 504; code: 'bad_gateway' | 'unavailable' | 'gateway_timeout'; message: string; target: Target | null };

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

export function isRetryable(method: string, hasBody: boolean): boolean {
  return !hasBody && IDEMPOTENT.has(method);
}

const SMALL_BODY = 64 * 1024;

function dispatchOnce(pool: Dispatcher, opts: Dispatcher.DispatchOptions, readTimeoutMs: number): Promise<UpstreamExchange> {
  return new Promise((resolve, reject) => {
    const exchange: UpstreamExchange = new UpstreamExchange((err) => (err === null ? resolve(exchange) : reject(err)), readTimeoutMs);
    pool.dispatch(opts, exchange);
  });
}

/**
 * Sends the request to one of the API's targets and resolves once the response headers are in.
 * Retries go to a different target, only for idempotent methods without a body, and only on
 * errors before any response byte arrived.
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
      // No AbortController per request (measurable on the hot path): the wait for the headers and
      // every gap in the body are bounded by one read timeout (nginx's proxy_read_timeout works
      // the same way), the whole body by a deadline armed once the headers are in.
      const exchange = await dispatchOnce(
        pool,
        // undici's own timeouts off: the exchange keeps the read timeout (see its constructor).
        {
          method: o.method as Dispatcher.HttpMethod,
          path: target.pathPrefix + o.pathAndQuery,
          headers: o.headers,
          body: o.body,
          headersTimeout: 0,
          bodyTimeout: 0,
        },
        Math.min(o.headersTimeoutMs, remaining),
      );
      upstreams.reportSuccess(target);
      // A small body of declared length is already (nearly) in our buffers; the read timeout
      // covers a stall, so only streams of unknown or large size get a deadline timer.
      const len = exchange.declaredLength();
      if (len < 0 || len > SMALL_BODY) exchange.armDeadline(o.totalTimeoutMs - (Date.now() - started));
      return { ok: true, exchange, target };
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      const timedOut = TIMEOUT_ERRORS.has(code);
      if (!(err instanceof QueueTimeoutError)) upstreams.reportFailure(target);
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
