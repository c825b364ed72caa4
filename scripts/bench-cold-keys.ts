// Cold keys and tenant isolation (a script, not a test): `npm run bench:cold-keys` (docs/adr/0020).
//
// One gateway (GATEWAY_WORKERS=2, bundled as production runs it) on a private redis-server, an
// upstream in this process, open-loop load with latency from each request's intended send time:
//   1. cold vs hot, in the same run: BENCH_COLD_KEYS (10,000) distinct keys, each used once, at
//      BENCH_COLD_RATE (1,000 req/s), while one hot key runs at BENCH_HOT_RATE (200 req/s);
//   2. isolation: tenant B at BENCH_B_RATE (100 req/s) alone, then under tenant A's flood
//      (BENCH_FLOOD_CONNECTIONS = 64 closed-loop connections) answered 200, then under a flood
//      answered 429 (a key over its limit); Redis commands per refused call from INFO.
// BENCH_MODES=new,legacy (default both, interleaved per phase): `legacy` turns the cold-key script,
// the deny cache and fair share off and waits 50 ms for Redis, as before ADR 0020.
// BENCH_PHASE_S (8): seconds per isolation phase. Needs redis-server.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { Pool } from 'undici';
import { generateApiKey, hashApiKey } from '@tollgate/keys';
import { startRedisMonitor } from '../test/harness/redis-monitor';
import { bundleGateway, freePort, spawnGateway } from './bench/gateway-process';
import { commands, flood, fmt, openLoop } from './bench/load';

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const COLD_KEYS = env('BENCH_COLD_KEYS', 10_000);
const COLD_RATE = env('BENCH_COLD_RATE', 1000);
const HOT_RATE = env('BENCH_HOT_RATE', 200);
const B_RATE = env('BENCH_B_RATE', 100);
const FLOOD = env('BENCH_FLOOD_CONNECTIONS', 64);
const PHASE_S = env('BENCH_PHASE_S', 8);
const MODES = (process.env.BENCH_MODES ?? 'new,legacy').split(',') as ('new' | 'legacy')[];

const procs: ChildProcess[] = [];
const cleanup = () => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
};
process.on('exit', cleanup);

async function main() {
  const work = mkdtempSync(path.join(tmpdir(), 'tg-coldbench-'));
  const redisPort = await freePort();
  const redisProc = spawn('redis-server', ['--port', String(redisPort), '--save', '', '--appendonly', 'no', '--dir', work], {
    stdio: 'ignore',
  });
  procs.push(redisProc);
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined); // while redis-server starts
  for (let i = 0; i < 200 && redis.status !== 'ready'; i++) await new Promise((r) => setTimeout(r, 50));
  if (redis.status !== 'ready') throw new Error(`redis-server on port ${redisPort} did not start`);

  const upstream: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`;

  bundleGateway();

  const now = Date.now();
  const api = (id: string) => ({
    id,
    slug: 'echo',
    name: 'Echo',
    basePath: '/echo',
    version: 'v1',
    authMode: 'api_key',
    allowQueryKey: false,
    failMode: 'open',
    loadBalancing: 'round_robin',
    timeouts: { connectMs: 1000, headersMs: 5000, requestMs: 10000 },
    retries: 0,
    jwt: null,
    targets: [{ id: `tgt_${id}`, url: upstreamUrl, weight: 1, healthCheck: null }],
    routes: [{ id: `rte_${id}`, methods: [], path: '/*', timeoutMs: null, cacheTtlSeconds: 0, transform: null, rateLimit: null }],
  });
  const plan = (id: string, apiId: string, rateLimit: object | null, quota: object | null) => ({
    id,
    slug: id,
    name: id,
    rateLimit,
    quota,
    apiIds: [apiId],
  });
  const big = { limit: 1_000_000_000, windowSeconds: 60, algorithm: 'sliding_window' };
  const snapshot = (tenantId: string, slug: string, plans: object[]) => ({
    schemaVersion: 1,
    tenantId,
    tenantSlug: slug,
    version: 1,
    publishedAt: new Date().toISOString(),
    hosts: [],
    // The upstream is on loopback: private targets must be allowed (ADR 0019's SSRF guard).
    allowPrivateTargets: true,
    apis: [api(`api_${slug}`)],
    plans,
  });
  const tenants = [
    snapshot('ten_a', 'a', [
      plan('pln_std', 'api_a', { limit: 1000, windowSeconds: 60, algorithm: 'sliding_window' }, { limit: 100_000, mode: 'hard_cap' }),
      plan('pln_big', 'api_a', big, { limit: 1_000_000_000, mode: 'hard_cap' }),
      plan('pln_tiny', 'api_a', { limit: 10, windowSeconds: 3600, algorithm: 'fixed_window' }, null),
    ]),
    snapshot('ten_b', 'b', [plan('pln_big', 'api_b', big, { limit: 1_000_000_000, mode: 'hard_cap' })]),
  ];
  const record = (i: string, tenantId: string, planId: string) => ({
    schemaVersion: 1,
    keyId: `key_${i}`,
    tenantId,
    consumerId: `con_${i}`,
    subscriptionId: `sub_${i}`,
    planId,
    status: 'active',
    subscriptionStatus: 'active',
    expiresAt: null,
    apiIds: [],
    scopes: [],
    rateLimitOverride: null,
    quotaOverride: null,
    periodStart: now - 86_400_000,
    periodEnd: now + 30 * 86_400_000,
  });

  /** Publishes the tenants and fresh keys under `prefix`: every mode starts cold. */
  async function seed(prefix: string) {
    for (const t of tenants) {
      await redis.set(`${prefix}:policy:${t.tenantId}`, JSON.stringify(t));
      await redis.hset(`${prefix}:policy:versions`, t.tenantId, '1');
    }
    const issue = async (id: string, tenantId: string, planId: string) => {
      const key = generateApiKey('live');
      await redis.set(`${prefix}:key:${hashApiKey(key)}`, JSON.stringify(record(id, tenantId, planId)));
      return key;
    };
    const cold: string[] = [];
    for (let b = 0; b < COLD_KEYS; b += 1000) {
      const p = redis.pipeline();
      for (let i = b; i < Math.min(COLD_KEYS, b + 1000); i++) {
        const key = generateApiKey('live');
        cold.push(key);
        p.set(`${prefix}:key:${hashApiKey(key)}`, JSON.stringify(record(`cold${i}`, 'ten_a', 'pln_std')));
      }
      await p.exec();
    }
    return {
      cold,
      hot: await issue('hot', 'ten_a', 'pln_big'),
      flood200: await issue('flood200', 'ten_a', 'pln_big'),
      flood429: await issue('flood429', 'ten_a', 'pln_tiny'),
      b: await issue('b', 'ten_b', 'pln_big'),
    };
  }

  async function startGateway(mode: 'new' | 'legacy', prefix: string) {
    const port = await freePort();
    const adminPort = await freePort();
    const legacy: Record<string, string> =
      mode === 'legacy'
        ? {
            GATEWAY_COLD_KEY_SCRIPT: 'false',
            GATEWAY_DENY_CACHE_MAX_MS: '0',
            GATEWAY_REDIS_TIMEOUT_MS: '50',
            GATEWAY_FAIR_SHARE_INFLIGHT: '1000000',
            GATEWAY_FAIR_SHARE_LOOP_DELAY_MS: '60000',
          }
        : {};
    const child = spawnGateway({
      redisUrl,
      prefix,
      port,
      adminPort,
      workers: 2,
      spoolDir: path.join(work, `spool-${port}`),
      env: { GATEWAY_ACCESS_LOG: 'false', ...legacy },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    procs.push(child);
    const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 256 });
    for (let i = 0; i < 300; i++) {
      try {
        const res = await pool.request({ method: 'GET', path: '/echo/x', headers: { host: 'b.localhost' } });
        await res.body.dump();
        if (res.statusCode === 401) break;
      } catch {
        /* starting */
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return { child, pool, port, adminPort };
  }

  async function metric(adminPort: number, pattern: RegExp): Promise<string[]> {
    const res = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
    return (await res.text()).split('\n').filter((l) => pattern.test(l) && !l.startsWith('#'));
  }

  const results: Record<string, Record<string, string>> = {};
  for (const mode of MODES) {
    const prefix = `tgcold_${mode}_${Date.now().toString(36)}`;
    const keys = await seed(prefix);
    const gw = await startGateway(mode, prefix);
    const r: Record<string, string> = (results[mode] = {});
    const auth = (key: string, host: string) => ({ host, authorization: `Bearer ${key}` });
    // Warm the hot key and B (they are the "hot" references), and each worker's JIT.
    for (let i = 0; i < 200; i++) {
      const res = await gw.pool.request({ method: 'GET', path: '/echo/w', headers: auth(keys.hot, 'a.localhost') });
      await res.body.dump();
    }

    // 1. cold keys vs one hot key, same run
    const coldCount = keys.cold.length;
    const coldMs = (coldCount / COLD_RATE) * 1000;
    const c0 = await commands(redis);
    const [cold, hot] = await Promise.all([
      openLoop(gw.pool, COLD_RATE, coldCount, (i) => ({ path: '/echo/cold', headers: auth(keys.cold[i]!, 'a.localhost') })),
      openLoop(gw.pool, HOT_RATE, Math.round((HOT_RATE * coldMs) / 1000), () => ({
        path: '/echo/hot',
        headers: auth(keys.hot, 'a.localhost'),
      })),
    ]);
    const c1 = await commands(redis);
    r['cold keys'] = fmt(cold);
    r['hot key (same run)'] = fmt(hot);
    r['redis commands per call (cold+hot phase)'] = ((c1 - c0) / (cold.n + hot.n)).toFixed(2);

    // 2. isolation: B alone, B under A's flood of 200s, B under A's flood of 429s
    const bCount = B_RATE * PHASE_S;
    const bReq = () => ({ path: '/echo/b', headers: auth(keys.b, 'b.localhost') });
    r['B alone'] = fmt(await openLoop(gw.pool, B_RATE, bCount, bReq));
    const aPool = new Pool(`http://127.0.0.1:${gw.port}`, { connections: FLOOD });
    for (const [label, key] of [
      ['A flood 200', keys.flood200],
      ['A flood 429', keys.flood429],
    ] as const) {
      const before = await commands(redis);
      // What the flooding key's calls cost Redis: commands naming its record or counters (scripts'
      // own included), apart from usage metering (one queue job per batch of events).
      const tag = label === 'A flood 429' ? 'sub_flood429' : 'sub_flood200';
      let keyCommands = 0;
      // (MONITOR over a raw socket: ioredis' monitor mode can fail on a busy connection.)
      const monitor = await startRedisMonitor(redisUrl);
      monitor.on(({ args }) => {
        if (args.some((a) => a.includes(tag)) && !args.some((a) => a.includes(':bull:'))) keyCommands++;
      });
      const f = flood(aPool, FLOOD, auth(key, 'a.localhost'));
      await new Promise((res) => setTimeout(res, 500));
      const b = await openLoop(gw.pool, B_RATE, bCount, bReq);
      await f.stop();
      monitor.close();
      const after = await commands(redis);
      const total = Object.values(f.statuses).reduce((s, n) => s + n, 0);
      r[`B under ${label}`] = fmt(b);
      r[`  A (${label})`] = `calls=${total} statuses=${JSON.stringify(f.statuses)}`;
      const refused = f.statuses[429] ?? 0;
      r[`  redis commands naming A's key, per 100 calls (${label})`] = ((keyCommands / Math.max(1, total)) * 100).toFixed(2);
      if (refused > 0) r[`  redis commands per 100 refused (${label}, all traffic)`] = (((after - before) / refused) * 100).toFixed(2);
    }
    await aPool.close();
    r['metrics'] = (
      await metric(gw.adminPort, /^tollgate_gateway_(limiter_fallback_total|cold_keys_total|shed_total|limiter_local_refusals_total)/)
    ).join('; ');
    await gw.pool.close();
    gw.child.kill('SIGTERM');
    await new Promise((res) => gw.child.once('exit', res));
  }

  for (const [mode, r] of Object.entries(results)) {
    console.log(`\n== ${mode}${mode === 'legacy' ? ' (cold script, deny cache, fair share off; 50 ms Redis wait)' : ''}`);
    for (const [k, v] of Object.entries(r)) console.log(`${k.padEnd(48)} ${v}`);
  }
  await redis.quit();
  upstream.close();
  cleanup();
  rmSync(work, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  cleanup();
  process.exit(1);
});
