import type { Decision, LimitOutcome } from './types';

/** Test helper: the outcome as a Decision, failing loudly (with Redis's reason) when it is not one. */
export function decided(o: LimitOutcome): Decision {
  if (o.kind !== 'decision') throw new Error(`expected a decision, got ${o.kind}: ${o.message}`);
  return o;
}
