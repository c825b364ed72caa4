import { NEXT, type RequestContext, type Step } from './context';
import { answer } from './reply';

/**
 * Fair share (ADR 0020), right after the route is known and before any key lookup, Redis call or
 * upstream work: while the process is saturated, a tenant over its share is answered 503 with
 * Retry-After. An admitted request counts in its tenant's share until the meter releases it.
 */
export function admit(ctx: RequestContext): Step {
  const tenantId = ctx.tenant!.tenantId;
  if (!ctx.gw.fair!.admit(tenantId)) {
    ctx.rejected = 'unavailable';
    return answer(ctx, 'unavailable', 'the gateway is saturated and this tenant is over its fair share; retry shortly', {
      'retry-after': '1',
    });
  }
  ctx.admitted = true;
  return NEXT;
}
