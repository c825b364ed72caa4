import { authorizeRecord, QUERY_KEY_PARAM } from '../auth/authenticate';
import { recordAuthFailure } from './authenticate';
import { NEXT, type RequestContext, type Step } from './context';
import { answer, WWW_AUTHENTICATE_INVALID } from './reply';
import { checkKeyIpRules } from './ip-rules';

/**
 * `api_key` APIs: may this key make this call — status, expiry, tenant, the APIs its key or plan
 * allows, the subscription's state. An accepted key is who limits count against, and is kept
 * from the upstream (its header dropped, or its query parameter removed).
 */
export function authorizeKey(ctx: RequestContext): Step {
  const auth = authorizeRecord(ctx.keyLookup!, ctx.keyHash, ctx.tenant!, ctx.api!, Date.now());
  if (!auth.ok) {
    const f = auth.failure;
    ctx.rejected = f.status === 403 ? 'forbidden' : f.status === 503 ? 'unavailable' : 'auth';
    if (f.status === 401) recordAuthFailure(ctx);
    return answer(ctx, f.code, f.message, f.status === 401 ? { 'www-authenticate': WWW_AUTHENTICATE_INVALID } : undefined);
  }
  ctx.identity = auth.identity;
  // Plan and key address lists (ADR 0025): nothing to check unless some plan or this key has one.
  if (ctx.tenant!.planIpRules.size !== 0 || auth.identity.record.ipRules != null) {
    const step = checkKeyIpRules(ctx);
    if (step !== NEXT) return step;
  }
  ctx.subject = { kind: 'key', record: auth.identity.record, plan: auth.identity.plan };
  const found = ctx.key!;
  if (found.source === 'query') ctx.query = withoutParam(ctx.query, QUERY_KEY_PARAM);
  else ctx.credentialHeader = found.source;
  return NEXT;
}

/** Drops every `name=` pair, leaving the rest of the query byte-for-byte as sent. */
function withoutParam(query: string, name: string): string {
  return query
    .split('&')
    .filter((pair) => {
      const eq = pair.indexOf('=');
      const key = eq === -1 ? pair : pair.slice(0, eq);
      try {
        return decodeURIComponent(key.replace(/\+/g, ' ')) !== name;
      } catch {
        return true;
      }
    })
    .join('&');
}
