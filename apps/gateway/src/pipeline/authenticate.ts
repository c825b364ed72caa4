import { checkKeyFormat, extractApiKey } from '../auth/authenticate';
import type { KeyLookup } from '../auth/key-cache';
import { claimHeaderValue, jwtVerifierFor } from '../auth/jwt';
import { subjectId } from '../limits/enforce-limits';
import { clientAddress } from './limit';
import { bindSubject } from './bind-subject';
import { NEXT, type RequestContext, type Step } from './context';
import { answer, WWW_AUTHENTICATE_INVALID, WWW_AUTHENTICATE_MISSING } from './reply';
import { tokenScopes } from './scopes';

/**
 * `api_key` APIs: finds the key, checks its format (a typo or a scanner's guess costs no lookup)
 * and looks it up. A key in the cache is answered without a promise; whether it may make this
 * call is `authorizeKey`'s.
 */
export function authenticateKey(ctx: RequestContext): Step | Promise<Step> {
  const { gw } = ctx;
  const found = extractApiKey(ctx.headers, ctx.query, ctx.api!.policy.allowQueryKey);
  if (!found || found.key === '') {
    ctx.rejected = 'auth';
    return answer(ctx, 'unauthorized', 'an API key is required (Authorization: Bearer or X-API-Key)', {
      'www-authenticate': WWW_AUTHENTICATE_MISSING,
    });
  }
  // A key seen before skips the checksum and SHA-256: only well-formed keys are memoised.
  let hash = gw.keyHashes.get(found.key);
  if (hash === undefined) {
    const fmt = checkKeyFormat(found.key);
    if (!fmt.ok) {
      recordAuthFailure(ctx);
      ctx.rejected = 'auth';
      return answer(ctx, 'invalid_key', 'the API key is not valid', { 'www-authenticate': WWW_AUTHENTICATE_INVALID });
    }
    hash = fmt.hash;
    if (gw.keyHashes.size >= gw.config.keyCache.size) gw.keyHashes.clear();
    gw.keyHashes.set(found.key, hash);
  }
  ctx.key = found;
  ctx.keyHash = hash;
  const cold = gw.cold;
  // Only a key that would cost a lookup is held to the client's failed-authentication budget.
  const cached = gw.keys.peek(hash);
  if (cached !== undefined) return looked(ctx, cached);
  if (gw.authFailures.exceeded(clientOf(ctx), ctx.tenant!.tenantId)) return throttled(ctx);
  const lookup = cold === null ? gw.keys.lookup(hash) : undefined;
  if (lookup === undefined) {
    // Not cached: the record and (usually) its limit decision in one round trip (ADR 0020).
    gw.metrics.keyCache.inc({ result: 'miss' });
    return cold!.run(hash, ctx.tenant!, ctx.api!, ctx.route!, ctx.request.id, Date.now()).then((c) => {
      ctx.coldVerdict = c.verdict;
      return looked(ctx, c.lookup);
    });
  }
  if (lookup instanceof Promise) {
    gw.metrics.keyCache.inc({ result: 'miss' });
    return lookup.then((l) => looked(ctx, l));
  }
  return looked(ctx, lookup);
}

/** The client an authentication failure is counted against: the socket peer, or behind trusted proxies the nearest untrusted hop. */
function clientOf(ctx: RequestContext): string {
  return clientAddress(ctx.req.socket.remoteAddress, ctx.headers['x-forwarded-for'], ctx.gw.isTrusted);
}

/** An unknown or malformed key: counted against the client's failed-authentication budget. */
export function recordAuthFailure(ctx: RequestContext): void {
  ctx.gw.authFailures.recordFailure(clientOf(ctx), ctx.tenant!.tenantId);
}

function throttled(ctx: RequestContext): Step {
  ctx.rejected = 'auth';
  const retry = ctx.gw.authFailures.retryAfterSeconds(clientOf(ctx), ctx.tenant!.tenantId);
  return answer(ctx, 'rate_limited', 'too many failed authentication attempts from this client; retry later', {
    'retry-after': String(retry),
  });
}

function looked(ctx: RequestContext, lookup: KeyLookup): Step {
  ctx.keyLookup = lookup;
  return NEXT;
}

/** `jwt` APIs: a bearer token verified against the API's key or JWKS; its subject is who limits count. */
export function authenticateJwt(ctx: RequestContext): Step | Promise<Step> {
  const auth = ctx.headers.authorization;
  const token = auth && /^bearer /i.test(auth) ? auth.slice(7).trim() : '';
  const jwt = ctx.api!.policy.jwt;
  if (!token || !jwt) return verified(ctx, token, null);
  return jwtVerifierFor(jwt)(token).then((claims) => verified(ctx, token, claims));
}

function verified(ctx: RequestContext, token: string, claims: Record<string, unknown> | null): Step | Promise<Step> {
  if (!claims) {
    ctx.rejected = 'auth';
    return answer(ctx, 'unauthorized', token ? 'the token is not valid' : 'a bearer token is required', {
      'www-authenticate': token ? WWW_AUTHENTICATE_INVALID : WWW_AUTHENTICATE_MISSING,
    });
  }
  const sub = typeof claims.sub === 'string' ? claims.sub : '';
  ctx.consumerId = sub || null;
  ctx.subject = { kind: 'anonymous', id: subjectId(`jwt:${sub}`) };
  const claimHeaders: string[] = [];
  for (const name of ctx.api!.policy.jwt!.forwardClaims) {
    const v = claimHeaderValue(claims[name]);
    if (v !== null && /^[A-Za-z0-9_-]{1,64}$/.test(name)) claimHeaders.push(`x-tollgate-claim-${name.toLowerCase()}`, v);
  }
  ctx.claimHeaders = claimHeaders;
  ctx.credentialHeader = null;
  if (ctx.route!.policy.requiredScopes?.length) ctx.tokenScopes = tokenScopes(claims);
  const consumerClaim = ctx.api!.policy.jwt!.consumerClaim;
  return consumerClaim ? bindSubject(ctx, claims, consumerClaim) : NEXT;
}
