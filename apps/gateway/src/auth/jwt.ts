import { createLocalJWKSet, createRemoteJWKSet, customFetch, importSPKI, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { JwtPolicy } from '@tollgate/policy';

type Verifier = (token: string) => Promise<JWTPayload | null>;

const verifiers = new WeakMap<JwtPolicy, Verifier>();

/** Failed JWKS fetches back off from 1 s, doubling to at most a minute (successes are cached by jose). */
const JWKS_BACKOFF_MIN_MS = 1000;
const JWKS_BACKOFF_MAX_MS = 60_000;
const CLOCK_TOLERANCE_S = 5;

export class JwksBackoffError extends Error {
  readonly code = 'ERR_JWKS_BACKOFF';
}

/**
 * A fetch for jose's remote JWKS that remembers failures: a JWKS endpoint answering 302/500 or
 * not at all was fetched again on almost every request (jose only rate-limits refetches after a
 * success). After a failure, calls fail at once until the backoff has passed; each further
 * failure doubles it; a success resets it.
 */
export function backoffFetch(now: () => number = Date.now, fetchImpl: typeof fetch = fetch) {
  let failures = 0;
  let retryAt = 0;
  const failed = () => {
    failures++;
    retryAt = now() + Math.min(JWKS_BACKOFF_MIN_MS * 2 ** (failures - 1), JWKS_BACKOFF_MAX_MS);
  };
  const wrapped = async (url: string, options: RequestInit): Promise<Response> => {
    if (failures > 0 && now() < retryAt) throw new JwksBackoffError('JWKS endpoint failed recently; backing off');
    let res: Response;
    try {
      res = await fetchImpl(url, options);
    } catch (err) {
      failed();
      throw err;
    }
    if (res.status !== 200) failed();
    else failures = 0;
    return res;
  };
  return { fetch: wrapped, state: () => ({ failures, retryAt }) };
}

async function keyFor(policy: JwtPolicy): Promise<JWTVerifyGetKey | Uint8Array | Awaited<ReturnType<typeof importSPKI>>> {
  if (policy.jwksUrl)
    return createRemoteJWKSet(new URL(policy.jwksUrl), {
      timeoutDuration: 2000,
      cooldownDuration: 30_000,
      [customFetch]: backoffFetch().fetch,
    });
  const key = policy.key ?? '';
  if (key.includes('-----BEGIN PUBLIC KEY-----')) {
    const alg = policy.algorithms.find((a) => !a.startsWith('HS')) ?? 'RS256';
    return importSPKI(key, alg);
  }
  if (key.trim().startsWith('{')) return createLocalJWKSet(JSON.parse(key));
  return new TextEncoder().encode(key);
}

/**
 * Whether a verified token's lifetime is within the API's cap. Lifetime runs to `exp` from `iat`
 * or from now, whichever is earlier: a future `iat` can't make a long-lived token look short.
 * A token without `exp` (only when the API allows it) is capped by its age since `iat`.
 */
export function withinLifetime(payload: JWTPayload, policy: Pick<JwtPolicy, 'maxLifetimeSeconds'>, nowS: number): boolean {
  const max = policy.maxLifetimeSeconds ?? 86_400;
  const iat = typeof payload.iat === 'number' ? payload.iat : null;
  if (typeof payload.exp === 'number') {
    const from = iat === null ? nowS : Math.min(iat, nowS);
    return payload.exp - from <= max + CLOCK_TOLERANCE_S;
  }
  return iat === null || nowS - iat <= max + CLOCK_TOLERANCE_S;
}

/**
 * One verifier per JWT policy object (snapshots are immutable, so a new snapshot builds new
 * verifiers). Algorithms are pinned by the policy: a token can't pick `none` or swap RS for HS.
 * `exp` is required unless the API allows tokens without it; lifetimes are capped.
 */
export function jwtVerifierFor(policy: JwtPolicy): Verifier {
  let v = verifiers.get(policy);
  if (v) return v;
  const keyPromise = keyFor(policy);
  const algorithms = policy.algorithms.length ? policy.algorithms : ['RS256', 'ES256'];
  const requiredClaims = policy.requireExp === false ? [] : ['exp'];
  v = async (token: string) => {
    try {
      const key = await keyPromise;
      const { payload } = await jwtVerify(token, key as Parameters<typeof jwtVerify>[1], {
        algorithms,
        ...(policy.issuer ? { issuer: policy.issuer } : {}),
        ...(policy.audience ? { audience: policy.audience } : {}),
        clockTolerance: CLOCK_TOLERANCE_S,
        requiredClaims,
      });
      return withinLifetime(payload, policy, Math.floor(Date.now() / 1000)) ? payload : null;
    } catch {
      return null;
    }
  };
  verifiers.set(policy, v);
  return v;
}

/** Header-safe claim value: strings and numbers as-is, anything else as JSON, no control chars. */
export function claimHeaderValue(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  const s = typeof value === 'string' ? value : JSON.stringify(value);
  return /^[\x20-\x7e]{0,1024}$/.test(s) ? s : null;
}
