import { claimHeaderValue } from '../auth/jwt';
import { introspectorFor, wellFormedToken, type Introspection } from '../auth/introspection';
import { subjectId } from '../limits/enforce-limits';
import { recordAuthFailure } from './authenticate';
import { bindSubject } from './bind-subject';
import { NEXT, type RequestContext, type Step } from './context';
import { tokenScopes } from './scopes';
import { answer, WWW_AUTHENTICATE_INVALID, WWW_AUTHENTICATE_MISSING } from './reply';

/** Members of an introspection answer forwarded upstream as `X-Tollgate-Claim-{name}`. */
const FORWARDED = ['sub', 'client_id', 'scope', 'username'] as const;

/**
 * `introspection` APIs (RFC 7662, ADR 0028): the bearer token is asked about at the API's
 * authorization server (cached, single-flight), `active:false` is a 401, an endpoint that can't
 * answer is a 503 (never a 401, never billed). A malformed token never reaches the endpoint.
 */
export function authenticateIntrospection(ctx: RequestContext): Step | Promise<Step> {
  const auth = ctx.headers.authorization;
  const token = auth && /^bearer /i.test(auth) ? auth.slice(7).trim() : '';
  const policy = ctx.api!.policy.introspection;
  if (!token) {
    ctx.rejected = 'auth';
    return answer(ctx, 'unauthorized', 'a bearer token is required', { 'www-authenticate': WWW_AUTHENTICATE_MISSING });
  }
  if (!policy || !wellFormedToken(token)) return invalid(ctx);
  const result = introspectorFor(policy, ctx.tenant!.snapshot.allowPrivateTargets).introspect(token);
  if (result instanceof Promise) return result.then((r) => introspected(ctx, r));
  return introspected(ctx, result);
}

function invalid(ctx: RequestContext): Step {
  recordAuthFailure(ctx);
  ctx.rejected = 'auth';
  return answer(ctx, 'unauthorized', 'the token is not valid', { 'www-authenticate': WWW_AUTHENTICATE_INVALID });
}

function introspected(ctx: RequestContext, result: Introspection): Step | Promise<Step> {
  if (result.kind === 'unavailable') {
    ctx.rejected = 'unavailable';
    return answer(ctx, 'unavailable', 'the token could not be checked; try again shortly', { 'retry-after': '1' });
  }
  if (result.kind === 'inactive') return invalid(ctx);
  const policy = ctx.api!.policy.introspection!;
  const claims = result.claims;
  if (policy.requiredScopes.length > 0) {
    const granted = new Set(typeof claims.scope === 'string' ? claims.scope.split(' ') : []);
    const missing = policy.requiredScopes.filter((s) => !granted.has(s));
    if (missing.length > 0) {
      ctx.rejected = 'forbidden';
      return answer(ctx, 'insufficient_scope', `this API requires the scope${missing.length > 1 ? 's' : ''}: ${missing.join(' ')}`, {
        'www-authenticate': `Bearer realm="tollgate", error="insufficient_scope", scope="${policy.requiredScopes.join(' ')}"`,
      });
    }
  }
  const headers: string[] = [];
  for (const name of FORWARDED) {
    const v = claimHeaderValue(claims[name]);
    if (v !== null) headers.push(`x-tollgate-claim-${name.replace('_', '-')}`, v);
  }
  ctx.claimHeaders = headers;
  ctx.credentialHeader = null;
  if (ctx.route!.policy.requiredScopes?.length) ctx.tokenScopes = tokenScopes(claims);
  if (policy.consumerClaim) return bindSubject(ctx, claims, policy.consumerClaim);
  const who = typeof claims.sub === 'string' ? claims.sub : typeof claims.client_id === 'string' ? claims.client_id : '';
  ctx.consumerId = who || null;
  ctx.subject = { kind: 'anonymous', id: subjectId(`oauth:${who}`) };
  return NEXT;
}
