import { AsyncLocalStorage } from 'node:async_hooks';

// What the console's own HTTP server (src/main.ts) tells the request code, and what that code
// tells the server back. Next.js bundles the app separately from main.ts, so the two share one
// AsyncLocalStorage through globalThis rather than through a module.

/**
 * The client's address as src/main.ts resolved it (the socket peer, or with TRUST_PROXY the
 * right-most untrusted X-Forwarded-For entry). main.ts deletes any client-sent copy first, so
 * the value is ours on every request it serves.
 */
export const CLIENT_IP_HEADER = 'x-tollgate-client-ip';

export type RequestScope = {
  /** An HTTP status the response must carry instead of a 200 (a refused login: 429). */
  status?: number;
  headers: Record<string, string>;
};

type Holder = { [key: symbol]: AsyncLocalStorage<RequestScope> | true | undefined };
const STORAGE = Symbol.for('tollgate.console.requestScope');
const SERVED = Symbol.for('tollgate.console.ownServer');
const holder = globalThis as unknown as Holder;

export function requestScopes(): AsyncLocalStorage<RequestScope> {
  return ((holder[STORAGE] as AsyncLocalStorage<RequestScope> | undefined) ??= new AsyncLocalStorage<RequestScope>());
}

/** Set once by src/main.ts: every request in this process has passed its header check. */
export function markOwnServer(): void {
  holder[SERVED] = true;
}

/**
 * True when this process was started by src/main.ts. Under a bare `next start` nobody strips a
 * client's CLIENT_IP_HEADER, so the header means nothing and the address is unknown.
 */
export function servedByOwnServer(): boolean {
  return holder[SERVED] === true;
}

/**
 * The client address for rate limits and the audit log, as the console's server (src/main.ts)
 * resolved it from the socket — and, with TRUST_PROXY, from X-Forwarded-For up to the first
 * address that isn't one of our proxies. A client's X-Forwarded-For or X-Real-IP is never read
 * here. Null when the process wasn't started by src/main.ts (a bare `next start`): then the
 * header could be the client's own, and callers fall back to one shared "unknown" bucket.
 */
export function clientIpFrom(h: Pick<Headers, 'get'>): string | null {
  if (!servedByOwnServer()) return null;
  const ip = h.get(CLIENT_IP_HEADER);
  return ip ? ip.slice(0, 64) : null;
}

/**
 * Asks the server to answer this request with `status` (and headers) in place of the 200 Next
 * would send; the body — the page or the server action's result — is unchanged, so a browser
 * form still shows its message. Redirects and errors keep their own status.
 */
export function answerWithStatus(status: number, headers: Record<string, string> = {}): void {
  const scope = requestScopes().getStore();
  if (!scope) return;
  scope.status = status;
  Object.assign(scope.headers, headers);
}
