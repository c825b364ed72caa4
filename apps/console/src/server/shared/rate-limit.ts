import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Keyspace } from '@tollgate/policy';

export type RateDecision = { allowed: boolean; retryAfterSeconds: number };

// Fallback while Redis is unreachable: per-process counters, so a Redis outage doesn't turn
// login into an unlimited password-guessing endpoint.
const local = new Map<string, { count: number; resetAt: number }>();

function localHit(key: string, limit: number, windowMs: number, now: number): RateDecision {
  if (local.size > 10_000) for (const [k, v] of local) if (v.resetAt <= now) local.delete(k);
  const cur = local.get(key);
  if (!cur || cur.resetAt <= now) {
    local.set(key, { count: 1, resetAt: now + windowMs });
    return { allowed: true, retryAfterSeconds: 0 };
  }
  cur.count++;
  return { allowed: cur.count <= limit, retryAfterSeconds: Math.ceil((cur.resetAt - now) / 1000) };
}

/** Subjects may hold e-mails or IPv6 addresses; the keyspace only takes a safe alphabet. */
export const rateSubject = (kind: string, value: string) =>
  `console.${kind}.${createHash('sha256').update(value.toLowerCase()).digest('hex').slice(0, 32)}`;

/** Fixed-window counter for account endpoints (login, signup), shared by every console replica. */
export async function hitRateLimit(
  deps: { redis: Redis; keyspace: Keyspace },
  subject: string,
  limiter: string,
  limit: number,
  windowSeconds: number,
): Promise<RateDecision> {
  const key = deps.keyspace.rate(subject, limiter);
  try {
    if (deps.redis.status !== 'ready') throw new Error('redis not ready');
    const res = await deps.redis.multi().incr(key).pttl(key).exec();
    const count = Number(res?.[0]?.[1] ?? 0);
    let ttl = Number(res?.[1]?.[1] ?? -1);
    if (ttl < 0) {
      await deps.redis.pexpire(key, windowSeconds * 1000);
      ttl = windowSeconds * 1000;
    }
    return { allowed: count <= limit, retryAfterSeconds: Math.max(1, Math.ceil(ttl / 1000)) };
  } catch {
    return localHit(key, limit, windowSeconds * 1000, Date.now());
  }
}
