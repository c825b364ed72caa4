import { z } from 'zod';
import { IpRules } from './edge';
import { RateLimitPolicy } from './snapshot';

export const KEY_RECORD_SCHEMA_VERSION = 1;

/**
 * What the gateway knows of one API key, stored at `tg:key:{sha256(key)}`. Times are epoch
 * milliseconds so the hot path never parses dates.
 */
export const KeyRecord = z.object({
  schemaVersion: z.literal(KEY_RECORD_SCHEMA_VERSION),
  keyId: z.string(),
  tenantId: z.string(),
  consumerId: z.string(),
  subscriptionId: z.string().nullable(),
  planId: z.string().nullable(),
  status: z.enum(['active', 'revoked']),
  /** null when the key has no subscription (internal keys). */
  subscriptionStatus: z.enum(['incomplete', 'trialing', 'active', 'past_due', 'canceled']).nullable(),
  expiresAt: z.number().int().nullable(),
  /** APIs this key may call; empty = every API its plan grants (or all, without a plan). */
  apiIds: z.array(z.string()),
  scopes: z.array(z.string()),
  rateLimitOverride: RateLimitPolicy.pick({ limit: true, windowSeconds: true }).nullable(),
  quotaOverride: z.number().int().nonnegative().nullable(),
  /** The billing period the quota counts in. */
  periodStart: z.number().int().nullable(),
  periodEnd: z.number().int().nullable(),
  /**
   * `test` for a `tg_test_` key: its calls are never billed, count in quota counters of their
   * own and may go to the API's sandbox upstream (ADR 0017). Added after v1; absent = live.
   */
  env: z.enum(['live', 'test']).optional(),
  /** Client address rules of this key (ADR 0025); absent/null = none. */
  ipRules: IpRules.nullable().optional(),
});
export type KeyRecord = z.infer<typeof KeyRecord>;

/** Subscription states in which a key may call. */
export const SERVING_SUBSCRIPTION_STATES: ReadonlySet<KeyRecord['subscriptionStatus']> = new Set(['trialing', 'active', 'past_due', null]);
