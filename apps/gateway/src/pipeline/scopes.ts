import { NEXT, type RequestContext, type Step } from './context';
import { answer } from './reply';

/**
 * Routes with `requiredScopes` (ADR 0025): the caller must hold every one — a key's `scopes`, or
 * a JWT's `scope` (space-separated, RFC 8693) / `scp` claim. 403 `insufficient_scope`, with
 * RFC 6750's `WWW-Authenticate` naming what the route needs.
 */
export function requireScopes(ctx: RequestContext): Step {
  const required = ctx.route!.policy.requiredScopes!;
  // A token's own scopes count even when its subject is bound to a key record (ADR 0028).
  const held = ctx.tokenScopes ?? (ctx.identity !== null ? ctx.identity.record.scopes : null);
  if (held !== null) {
    let all = true;
    for (let i = 0; i < required.length; i++) {
      if (!held.includes(required[i]!)) {
        all = false;
        break;
      }
    }
    if (all) return NEXT;
  }
  ctx.rejected = 'forbidden';
  const scope = required.join(' ');
  return answer(ctx, 'insufficient_scope', `this route requires the scope${required.length > 1 ? 's' : ''}: ${scope}`, {
    'www-authenticate': `Bearer realm="tollgate", error="insufficient_scope", scope="${scope}"`,
  });
}

/** A JWT's scopes: `scope` as a space-separated string, or `scp` as a list or string. */
export function tokenScopes(claims: Record<string, unknown>): readonly string[] {
  const s = claims.scope ?? claims.scp;
  if (typeof s === 'string') return s.split(' ').filter(Boolean);
  if (Array.isArray(s)) return s.filter((x): x is string => typeof x === 'string');
  return [];
}
