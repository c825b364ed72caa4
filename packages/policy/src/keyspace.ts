/**
 * Every Redis key and channel name Tollgate uses is built here and nowhere else. The prefix is
 * `tg` in production; tests give each run its own so runs can't collide. Counter keys carry a
 * hash tag (`{…}`) so all keys of one limiter decision land in one Redis Cluster slot.
 */
export type Keyspace = ReturnType<typeof createKeyspace>;

const SAFE = /^[A-Za-z0-9_.:-]{1,128}$/;
function part(value: string, what: string): string {
  if (!SAFE.test(value)) throw new Error(`invalid ${what} for a Redis key: ${JSON.stringify(value).slice(0, 80)}`);
  return value;
}

export function createKeyspace(prefix = 'tg') {
  part(prefix, 'prefix');
  return {
    prefix,
    /** Pub/sub channel for TgEvent messages. */
    eventsChannel: `${prefix}:events`,
    /** Hash tenantId → current published version. */
    policyVersions: `${prefix}:policy:versions`,
    policy: (tenantId: string) => `${prefix}:policy:${part(tenantId, 'tenant id')}`,
    /**
     * Redis Stream of policy changes (one entry per published tenant version or deletion, see
     * change-stream.ts). Its entry ids are the global sequence gateways resume from.
     */
    policyStream: `${prefix}:policy:changes`,
    key: (hash: string) => `${prefix}:key:${part(hash, 'key hash')}`,
    /** Rate limiter state for one subject (key, consumer, IP or route), one limiter name. */
    rate: (subject: string, limiter: string) => `${prefix}:rl:{${part(subject, 'subject')}}:${part(limiter, 'limiter')}`,
    /** Quota counter for one subject in the billing period that starts at periodStart (ms). */
    quota: (subject: string, periodStart: number) => `${prefix}:quota:{${part(subject, 'subject')}}:${periodStart}`,
    /** BullMQ's own prefix, so queues live in the same namespace. */
    bullPrefix: `${prefix}:bull`,
    /** Last heartbeat per gateway instance (hash instanceId → JSON). */
    gateways: `${prefix}:gateways`,
    /** Live gateway processes: sorted set of process ids scored by their last heartbeat (Redis ms). */
    liveGateways: `${prefix}:gateways:live`,
    /** A console session logged out before its expiry, by token id (expires with the token). */
    revokedSession: (jti: string) => `${prefix}:console:revoked:${part(jti, 'session id')}`,
    /** Every key name under this prefix, for cleanup in tests and tenant deletion. */
    pattern: `${prefix}:*`,
  };
}

/** The one queue name list: queues and job payloads are versioned and declared here. */
export const QUEUES = {
  usage: 'usage',
  billing: 'billing',
  outbox: 'outbox',
} as const;
