import { compileCidrs, type IpMatcher, type IpRules } from '@tollgate/policy';
import { clientAddress } from './limit';
import { NEXT, type RequestContext, type Step } from './context';
import { answer } from './reply';

/** Allow/deny lists compiled once (a snapshot swap, a key record's first use): ADR 0025. */
export type CompiledIpRules = { allow: IpMatcher | null; deny: IpMatcher | null };

export function compileIpRules(rules: IpRules | null | undefined): CompiledIpRules | null {
  if (!rules || (rules.allow.length === 0 && rules.deny.length === 0)) return null;
  return {
    allow: rules.allow.length ? compileCidrs(rules.allow) : null,
    deny: rules.deny.length ? compileCidrs(rules.deny) : null,
  };
}

/** Deny first (a denied address is refused even when an allow rule also covers it); then, with an allow list, only what it lists. */
export function ipAllowed(rules: CompiledIpRules, ip: string): boolean {
  if (rules.deny !== null && rules.deny.has(ip)) return false;
  return rules.allow === null || rules.allow.has(ip);
}

/** The client's address (socket peer, or the nearest untrusted X-Forwarded-For hop behind trusted proxies), worked out once per request. */
export function clientIp(ctx: RequestContext): string {
  return (ctx.clientIp ??= clientAddress(ctx.req.socket.remoteAddress, ctx.headers['x-forwarded-for'], ctx.gw.isTrusted));
}

function refuse(ctx: RequestContext): Step {
  ctx.rejected = 'forbidden';
  return answer(ctx, 'forbidden', 'requests from this client address are not allowed');
}

/** The API's own list, before any authentication work: a refused address costs no key lookup, no token check. */
export function checkApiIpRules(ctx: RequestContext): Step {
  return ipAllowed(ctx.api!.ipRules!, clientIp(ctx)) ? NEXT : refuse(ctx);
}

/** Compiled rules of key records, by record (records are immutable and replaced on change). */
const keyRules = new WeakMap<object, CompiledIpRules | null>();

/**
 * Plan and key lists, once the key is known (`authorizeKey`): a record or plan without rules
 * costs two property reads.
 */
export function checkKeyIpRules(ctx: RequestContext): Step {
  const identity = ctx.identity!;
  const planRules = identity.plan === null ? null : (ctx.tenant!.planIpRules.get(identity.plan.id) ?? null);
  if (planRules !== null && !ipAllowed(planRules, clientIp(ctx))) return refuse(ctx);
  const rec = identity.record;
  if (rec.ipRules == null) return NEXT;
  let rules = keyRules.get(rec);
  if (rules === undefined) {
    rules = compileIpRules(rec.ipRules);
    keyRules.set(rec, rules);
  }
  return rules === null || ipAllowed(rules, clientIp(ctx)) ? NEXT : refuse(ctx);
}
