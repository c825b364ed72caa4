import type { Keyspace } from '@tollgate/policy';

export type LimitSubject = { keyId: string; subscriptionId: string | null };

/**
 * Keys for one API key's decision, all under ONE hash tag so the script touches one Cluster
 * slot: the subscription id when the key has one (the quota is per subscription, and every key
 * of a subscription then lives in the same slot), else the key id. Rates stay per key: the
 * limiter name carries the key id. See docs/adr/0003-rate-limit-keys.md.
 */
export function createLimitKeys(keyspace: Keyspace, subject: LimitSubject) {
  const tag = subject.subscriptionId ?? subject.keyId;
  return {
    tag,
    /** The plan rate (or the key's override) of this key. */
    keyRate: () => keyspace.rate(tag, `key:${subject.keyId}`),
    /** A route's own rate, counted per key. */
    routeRate: (routeId: string) => keyspace.rate(tag, `key:${subject.keyId}:route:${routeId}`),
    /** Any other per-key limiter, by name. */
    rate: (limiter: string) => keyspace.rate(tag, `key:${subject.keyId}:${limiter}`),
    /** The subscription's quota counter for the billing period starting at periodStart (ms). */
    quota: (periodStart: number) => keyspace.quota(tag, periodStart),
  };
}
export type LimitKeys = ReturnType<typeof createLimitKeys>;
