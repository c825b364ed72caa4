import { createHash } from 'node:crypto';
import { z } from 'zod';

/**
 * A claim (JWT) or introspection member whose value names the consumer a call bills to (ADR
 * 0028): `sub`, `client_id`, or any claim the API configures.
 */
export const ConsumerClaim = z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/);
export type ConsumerClaim = z.infer<typeof ConsumerClaim>;

/**
 * OAuth 2.0 token introspection (RFC 7662) as an API's auth mode. The client secret travels in
 * the snapshot like a JWT HS secret does (the snapshot lives in Redis, never in the admin API's
 * answers).
 */
export const IntrospectionPolicy = z.object({
  /** The authorization server's introspection endpoint (http/https; same address rules as JWKS URLs). */
  endpoint: z.url(),
  /** client_secret_basic credentials the gateway authenticates to the endpoint with. */
  clientId: z.string().min(1).max(256),
  clientSecret: z.string().min(1).max(1024),
  /**
   * Longest a result (active or not) is reused; an active token is never reused past its `exp`.
   * 0 = every request asks the endpoint.
   */
  cacheMaxTtlSeconds: z.number().int().min(0).max(3600).default(60),
  /** Scopes every token must carry (space-separated `scope` member); empty = none required. */
  requiredScopes: z
    .array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/))
    .max(32)
    .default([]),
  /** Member naming the consumer (`client_id`, `sub`, …): set, a token must be bound to one (ADR 0028). */
  consumerClaim: ConsumerClaim.nullable().default(null),
});
export type IntrospectionPolicy = z.infer<typeof IntrospectionPolicy>;

/**
 * Where a subject binding's record lives: a key record (`tg:key:{hash}`) whose hash is derived
 * from the tenant and the claim value instead of a key, so a bound JWT subject or OAuth client
 * is authorised, limited, metered and billed exactly like a key (ADR 0028). The NUL separators
 * keep it disjoint from any real key's hash (keys never contain NUL).
 */
export function subjectBindingHash(tenantId: string, value: string): string {
  return createHash('sha256').update(`tollgate-subject\0${tenantId}\0${value}`).digest('hex');
}
