import { NEXT, type RequestContext, type Step } from './context';
import { answer } from './reply';

/**
 * APIs with a circuit breaker (ADR 0025), right before `forward` (and in the same tick as its
 * target pick): when the circuit of every target the call could go to is open, the gateway
 * answers 503 with `Retry-After` itself. Nothing reached an upstream, so it is never billed
 * (`answeredBy` stays `gateway`, ADR 0017).
 */
export function circuitGate(ctx: RequestContext): Step {
  const api = ctx.api!;
  const balancer = api.sandboxBalancer !== null && ctx.identity?.record.env === 'test' ? api.sandboxBalancer : api.balancer;
  const retry = ctx.gw.upstreams.circuitRetryAfter(balancer);
  if (retry === 0) return NEXT;
  ctx.rejected = 'unavailable';
  ctx.gw.metrics.upstreamErrors.inc({ kind: 'circuit_open' });
  return answer(ctx, 'unavailable', 'the upstream is failing and its circuit is open; retry later', { 'retry-after': String(retry) });
}
