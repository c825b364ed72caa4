import { createLocalJWKSet, createRemoteJWKSet, importSPKI, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { JwtPolicy } from '@tollgate/policy';

type Verifier = (token: string) => Promise<JWTPayload | null>;

const verifiers = new WeakMap<JwtPolicy, Verifier>();

async function keyFor(policy: JwtPolicy): Promise<JWTVerifyGetKey | Uint8Array | Awaited<ReturnType<typeof importSPKI>>> {
  if (policy.jwksUrl) return createRemoteJWKSet(new URL(policy.jwksUrl), { timeoutDuration: 2000, cooldownDuration: 30_000 });
  const key = policy.key ?? '';
  if (key.includes('-----BEGIN PUBLIC KEY-----')) {
    const alg = policy.algorithms.find((a) => !a.startsWith('HS')) ?? 'RS256';
    return importSPKI(key, alg);
  }
  if (key.trim().startsWith('{')) return createLocalJWKSet(JSON.parse(key));
  return new TextEncoder().encode(key);
}

/**
 * One verifier per JWT policy object (snapshots are immutable, so a new snapshot builds new
 * verifiers). Algorithms are pinned by the policy: a token can't pick `none` or swap RS for HS.
 */
export function jwtVerifierFor(policy: JwtPolicy): Verifier {
  let v = verifiers.get(policy);
  if (v) return v;
  const keyPromise = keyFor(policy);
  const algorithms = policy.algorithms.length ? policy.algorithms : ['RS256', 'ES256'];
  v = async (token: string) => {
    try {
      const key = await keyPromise;
      const { payload } = await jwtVerify(token, key as Parameters<typeof jwtVerify>[1], {
        algorithms,
        ...(policy.issuer ? { issuer: policy.issuer } : {}),
        ...(policy.audience ? { audience: policy.audience } : {}),
        clockTolerance: 5,
      });
      return payload;
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
