import { subjectBindingHash } from '@tollgate/policy';
import { authorizeRecord } from '../auth/authenticate';
import type { KeyLookup } from '../auth/key-cache';
import { NEXT, type RequestContext, type Step } from './context';
import { answer } from './reply';

/** A claim value usable as a binding: printable ASCII, at most 256 characters. */
const BINDABLE = /^[\x21-\x7e]{1,256}$/;

/**
 * JWT and introspection APIs with a consumer claim (ADR 0028): the claim's value is looked up as
 * a subject binding — a key record published under a hash of tenant and value — and from there
 * the caller is authorised, limited, metered and billed exactly as a key would be. A token whose
 * claim is missing or bound to nothing is refused with 403: the token is good, but nobody pays.
 */
export function bindSubject(ctx: RequestContext, claims: Record<string, unknown>, claim: string): Step | Promise<Step> {
  const raw = claims[claim];
  const value = typeof raw === 'number' && Number.isSafeInteger(raw) ? String(raw) : raw;
  if (typeof value !== 'string' || !BINDABLE.test(value)) return unbound(ctx, `the token carries no usable "${claim}" claim`);
  const hash = subjectBindingHash(ctx.tenant!.tenantId, value);
  const lookup = ctx.gw.keys.lookup(hash);
  if (lookup instanceof Promise) return lookup.then((l) => bound(ctx, l, hash));
  return bound(ctx, lookup, hash);
}

function bound(ctx: RequestContext, lookup: KeyLookup, hash: string): Step {
  if (lookup.kind === 'missing') return unbound(ctx, "no subscription is bound to this token's subject");
  const auth = authorizeRecord(lookup, hash, ctx.tenant!, ctx.api!, Date.now());
  if (!auth.ok) {
    const f = auth.failure;
    if (f.status === 503) {
      ctx.rejected = 'unavailable';
      return answer(ctx, 'unavailable', f.message);
    }
    // A revoked or expired binding is the tenant's decision about the subject, not a bad token.
    return unbound(ctx, f.status === 401 ? 'the binding for this subject is no longer active' : f.message);
  }
  ctx.identity = auth.identity;
  ctx.consumerId = auth.identity.record.consumerId;
  ctx.subject = { kind: 'key', record: auth.identity.record, plan: auth.identity.plan };
  return NEXT;
}

function unbound(ctx: RequestContext, message: string): Step {
  ctx.rejected = 'forbidden';
  return answer(ctx, 'forbidden', message);
}
