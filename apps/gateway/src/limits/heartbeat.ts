import type { Redis } from 'ioredis';

/**
 * KEYS[1] the live set; ARGV: this process's id, how long a heartbeat counts (ms). Adds this
 * process, drops the silent ones and counts the rest, on Redis' clock (one clock for all hosts).
 */
const HEARTBEAT_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
redis.call('PEXPIRE', KEYS[1], ttl * 2)
return redis.call('ZCARD', KEYS[1])
`;
const COMMAND = 'tollgateHeartbeatV1';

export type HeartbeatOptions = {
  redis: Redis;
  /** keyspace.liveGateways */
  key: string;
  /** Unique per process (instance, worker slot, pid). */
  id: string;
  /** Default 1000 ms; a process silent for 5 intervals no longer counts. */
  intervalMs?: number;
};

export type Heartbeat = {
  /** Live gateway processes as last counted (at least 1: this one); kept while Redis is away. */
  live(): number;
  stop(): Promise<void>;
};

/**
 * Each gateway process says it is alive once a second in a Redis sorted set and reads how many
 * are: the memory limiter's divisor in fallback (docs/adr/0020). The count is the one seen before
 * Redis went away, which is when it is needed.
 */
export function startHeartbeat({ redis, key, id, intervalMs = 1000 }: HeartbeatOptions): Heartbeat {
  const client = redis as Redis & Record<string, ((...args: (string | number)[]) => Promise<number>) | undefined>;
  if (typeof client[COMMAND] !== 'function') client.defineCommand(COMMAND, { lua: HEARTBEAT_LUA, numberOfKeys: 1 });
  const beat = client[COMMAND]!.bind(client);
  const ttl = intervalMs * 5;
  let live = 1;
  let pending = false;
  const tick = () => {
    if (pending || redis.status !== 'ready') return;
    pending = true;
    beat(key, id, ttl).then(
      (n) => {
        pending = false;
        if (Number.isInteger(n) && n >= 1) live = n;
      },
      () => {
        pending = false;
      },
    );
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return {
    live: () => live,
    async stop() {
      clearInterval(timer);
      if (redis.status === 'ready') await redis.zrem(key, id).catch(() => undefined);
    },
  };
}
