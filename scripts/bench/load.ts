// Load shapes for the benchmark scripts: an open loop (latency from each request's intended send
// time), a closed-loop flood, percentiles, and Redis's command count.
import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import type { Pool } from 'undici';

export type Stats = { n: number; p50: number; p99: number; statuses: Record<number, number>; errors: number };
export function stats(lat: number[], statuses: Record<number, number>, errors: number): Stats {
  const s = lat.slice().sort((a, b) => a - b);
  const q = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))]! : NaN);
  return { n: s.length, p50: q(0.5), p99: q(0.99), statuses, errors };
}
export const fmt = (s: Stats) =>
  `n=${s.n} p50=${s.p50.toFixed(1)} ms p99=${s.p99.toFixed(1)} ms statuses=${JSON.stringify(s.statuses)} transport errors=${s.errors}`;

/** Open loop: request i is due at start + i/rate; latency counts from then, not from when it left. */
export function openLoop(pool: Pool, rate: number, count: number, req: (i: number) => { path: string; headers: Record<string, string> }) {
  const lat: number[] = [];
  const statuses: Record<number, number> = {};
  let errors = 0;
  let finished = 0;
  const start = performance.now() + 20;
  let i = 0;
  return new Promise<Stats>((resolve) => {
    const done = () => {
      if (++finished === count) resolve(stats(lat, statuses, errors));
    };
    const tick = () => {
      const now = performance.now();
      while (i < count && start + (i * 1000) / rate <= now) {
        const due = start + (i * 1000) / rate;
        const r = req(i++);
        pool.request({ method: 'GET', path: r.path, headers: r.headers }).then(
          async (res) => {
            await res.body.dump();
            lat.push(performance.now() - due);
            statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
            done();
          },
          () => {
            errors++;
            done();
          },
        );
      }
      if (i < count) setTimeout(tick, 1);
    };
    tick();
  });
}

/** Closed loop on `connections` connections until stop(): the flooding tenant. */
export function flood(pool: Pool, connections: number, headers: Record<string, string>) {
  let running = true;
  const statuses: Record<number, number> = {};
  const loops = Array.from({ length: connections }, async () => {
    while (running) {
      try {
        const res = await pool.request({ method: 'GET', path: '/echo/flood', headers });
        await res.body.dump();
        statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
      } catch {
        statuses[0] = (statuses[0] ?? 0) + 1;
      }
    }
  });
  return {
    statuses,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** Commands Redis has processed so far (INFO stats). */
export async function commands(redis: Redis): Promise<number> {
  const info = await redis.info('stats');
  return Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? 0);
}
