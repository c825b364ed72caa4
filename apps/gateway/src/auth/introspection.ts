import { createHash } from 'node:crypto';
import { Agent, fetch as undiciFetch } from 'undici';
import type { IntrospectionPolicy } from '@tollgate/policy';
import { guardedConnector } from '../proxy/target-guard';
import { backoffFetch } from './jwt';

/**
 * What the authorization server said about one token (RFC 7662): `active` with its members, not
 * active, or nothing usable (endpoint down, refused, slow, or answering something that is not an
 * introspection response) — the last is a 503 for the caller, never a 401, and never cached.
 */
export type Introspection = { kind: 'active'; claims: Record<string, unknown> } | { kind: 'inactive' } | { kind: 'unavailable' };

/** RFC 6750 §2.1 b64token, capped: anything else is refused without asking the endpoint. */
const TOKEN = /^[A-Za-z0-9\-._~+/]{1,4096}=*$/;
export const MAX_TOKEN_LENGTH = 4096;
/** Entries per API before the oldest are dropped (Map order is insertion order). */
export const CACHE_ENTRIES = 10_000;
/** An introspection answer bigger than this is not one (RFC 7662 answers are a few hundred bytes). */
export const MAX_RESPONSE_BYTES = 64 * 1024;
const TIMEOUT_MS = 2000;

const UNAVAILABLE: Introspection = { kind: 'unavailable' };
const INACTIVE: Introspection = { kind: 'inactive' };

export function wellFormedToken(token: string): boolean {
  return token.length <= MAX_TOKEN_LENGTH + 2 && TOKEN.test(token);
}

type Entry = { result: Introspection; until: number };

export type Introspector = {
  introspect(token: string): Introspection | Promise<Introspection>;
  /** Calls made to the endpoint (for metrics and tests). */
  readonly calls: number;
};

const introspectors = new WeakMap<IntrospectionPolicy, Introspector>();

/**
 * One introspector per policy object (a new snapshot builds new ones, dropping the cache): a
 * bounded cache of results by token hash, and single-flight, so N concurrent requests with one
 * uncached token make one call.
 */
export function introspectorFor(policy: IntrospectionPolicy, allowPrivate: boolean, now: () => number = Date.now): Introspector {
  let it = introspectors.get(policy);
  if (!it) {
    it = createIntrospector(policy, allowPrivate, now);
    introspectors.set(policy, it);
  }
  return it;
}

export function createIntrospector(
  policy: IntrospectionPolicy,
  allowPrivate: boolean,
  now: () => number = Date.now,
  maxEntries = CACHE_ENTRIES,
): Introspector {
  const cache = new Map<string, Entry>();
  const inflight = new Map<string, Promise<Introspection>>();
  const dispatcher = new Agent({ connect: guardedConnector({ timeout: TIMEOUT_MS }, allowPrivate), connections: 16 });
  // A failing endpoint is not asked again for a second, doubling to a minute (as JWKS fetches).
  const backoff = backoffFetch(now, ((url: string, init: RequestInit) =>
    undiciFetch(url, { ...(init as object), dispatcher } as Parameters<typeof undiciFetch>[1])) as unknown as typeof fetch);
  const basic = `Basic ${Buffer.from(`${formEncode(policy.clientId)}:${formEncode(policy.clientSecret)}`).toString('base64')}`;
  let calls = 0;

  async function ask(token: string): Promise<Introspection> {
    calls++;
    let res: Response;
    try {
      res = await backoff.fetch(policy.endpoint, {
        method: 'POST',
        headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: `token=${encodeURIComponent(token)}&token_type_hint=access_token`,
        redirect: 'manual',
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch {
      return UNAVAILABLE;
    }
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => undefined);
      return UNAVAILABLE;
    }
    const text = await readBounded(res);
    if (text === null) return UNAVAILABLE;
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return UNAVAILABLE;
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return UNAVAILABLE;
    const claims = body as Record<string, unknown>;
    if (claims.active === false) return INACTIVE;
    if (claims.active !== true) return UNAVAILABLE;
    const exp = claims.exp;
    if (exp !== undefined && (typeof exp !== 'number' || exp * 1000 <= now())) return INACTIVE;
    return { kind: 'active', claims };
  }

  function remember(key: string, result: Introspection): void {
    if (result.kind === 'unavailable' || policy.cacheMaxTtlSeconds === 0) return;
    let until = now() + policy.cacheMaxTtlSeconds * 1000;
    if (result.kind === 'active' && typeof result.claims.exp === 'number') until = Math.min(until, result.claims.exp * 1000);
    if (cache.size >= maxEntries) cache.delete(cache.keys().next().value!);
    cache.set(key, { result, until });
  }

  return {
    get calls() {
      return calls;
    },
    introspect(token: string) {
      const key = createHash('sha256').update(token).digest('base64url');
      const hit = cache.get(key);
      if (hit) {
        if (hit.until > now()) return hit.result;
        cache.delete(key);
      }
      let p = inflight.get(key);
      if (!p) {
        p = ask(token).then((r) => {
          inflight.delete(key);
          remember(key, r);
          return r;
        });
        inflight.set(key, p);
      }
      return p;
    },
  };
}

/** RFC 6749 §2.3.1: client credentials are form-encoded before they go into Basic. */
function formEncode(s: string): string {
  return encodeURIComponent(s).replace(/%20/g, '+');
}

/** The body as text, or null once it passes MAX_RESPONSE_BYTES (the rest is not read). */
async function readBounded(res: Response): Promise<string | null> {
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > MAX_RESPONSE_BYTES || !res.body) {
    await res.body?.cancel().catch(() => undefined);
    return declared > MAX_RESPONSE_BYTES ? null : '';
  }
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > MAX_RESPONSE_BYTES) {
        await reader.cancel().catch(() => undefined);
        return null;
      }
      chunks.push(value);
    }
  } catch {
    return null;
  }
  return Buffer.concat(chunks).toString('utf8');
}
