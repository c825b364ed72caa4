/**
 * Rate limiter throughput and latency through ONE ioredis connection (auto-pipelining on), as a
 * gateway process would use it. Usage: `npx tsx scripts/bench-ratelimit.ts [seconds per case]`
 * with REDIS_URL (default redis://127.0.0.1:6379). Keys live under a throwaway prefix, deleted after.
 */
import { Redis } from 'ioredis';
import { createKeyspace } from '@tollgate/policy';
import { createLimitKeys, createMemoryLimiter, createRedisLimiter, type DecideRequest, type RateAlgorithm } from '@tollgate/ratelimit';

const seconds = Number(process.argv[2] ?? 3);
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const ks = createKeyspace(`bench_rl_${process.pid}`);
const SUBJECTS = 1000;
const periodEnd = Date.now() + 30 * 86_400_000;

function requests(algorithm: RateAlgorithm, full: boolean): DecideRequest[] {
  return Array.from({ length: SUBJECTS }, (_, i) => {
    const k = createLimitKeys(ks, { keyId: `key_${i}`, subscriptionId: `sub_${i}` });
    const plan = { name: 'plan', key: k.keyRate(), limit: 1_000_000_000, windowSeconds: 60, algorithm };
    if (!full) return { rates: [plan] };
    return {
      rates: [plan, { name: 'route', key: k.routeRate('rte_1'), limit: 1_000_000_000, windowSeconds: 1, algorithm: 'gcra' as const }],
      quota: { key: k.quota(0), limit: 1_000_000_000, mode: 'overage' as const, periodEnd },
    };
  });
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

/** Redis-side cost of the script, independent of how loaded the client machine is. */
async function scriptStats(): Promise<{ calls: number; usec: number }> {
  const m = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(await redis.info('commandstats'));
  return { calls: Number(m?.[1] ?? 0), usec: Number(m?.[2] ?? 0) };
}

async function run(label: string, decide: (r: DecideRequest) => Promise<unknown>, reqs: DecideRequest[], concurrency: number) {
  const before = await scriptStats();
  const lat: number[] = [];
  let done = 0;
  let unavailable = 0;
  const reasons = new Set<string>();
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      let i = w;
      while (performance.now() < deadline) {
        const t = performance.now();
        const out = (await decide(reqs[i++ % reqs.length]!)) as { kind: string };
        if (out.kind !== 'decision') {
          unavailable++;
          reasons.add((out as unknown as { reason: string }).reason);
        }
        lat.push(performance.now() - t);
        done++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const after = await scriptStats();
  const calls = after.calls - before.calls;
  // Other clients' scripts (BullMQ) on a shared Redis count too: read it on a quiet Redis.
  // Decisions share script calls (batching): the Redis-side cost that matters is per decision.
  const serverUs =
    calls > 0 && label.startsWith('redis')
      ? `  redis ${((after.usec - before.usec) / done).toFixed(1)} µs/decision (${(done / calls).toFixed(1)} per call)`
      : '';
  lat.sort((a, b) => a - b);
  console.log(
    `${label.padEnd(46)} c=${String(concurrency).padStart(3)}  ${Math.round(done / elapsed)
      .toLocaleString('en')
      .padStart(
        9,
      )} decisions/s  p50 ${pct(lat, 50).toFixed(3)} ms  p99 ${pct(lat, 99).toFixed(3)} ms${serverUs}${unavailable ? `  (${unavailable} unavailable: ${[...reasons].join(',')})` : ''}`,
  );
}

const redis = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, enableAutoPipelining: true });
await new Promise<void>((resolve, reject) => {
  redis.once('ready', resolve);
  redis.once('error', reject);
});
const limiter = createRedisLimiter({ redis, timeoutMs: 1000 });
const { cpus } = await import('node:os');
console.log(
  `node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${seconds}s per case, one connection, ${SUBJECTS} subjects`,
);

try {
  const full = requests('sliding_window', true);
  await run('warm-up', limiter.decide, full, 16);
  for (const c of [1, 16, 64, 256]) await run('redis: plan sliding + route gcra + quota', limiter.decide, full, c);
  for (const algorithm of ['fixed_window', 'sliding_window', 'gcra', 'token_bucket'] as const) {
    await run(`redis: ${algorithm} only`, limiter.decide, requests(algorithm, false), 64);
  }
  const mem = createMemoryLimiter();
  await run('memory: plan sliding + route gcra (fail-open)', mem.decide, full, 1);
} finally {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${ks.prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.unlink(...keys);
  } while (cursor !== '0');
  redis.disconnect();
}
