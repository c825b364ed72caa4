import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyspace, QUEUES, type Keyspace } from '@tollgate/policy';
import type { UsageBatch, UsageEvent } from '@tollgate/usage';
import { createLimitKeys } from '@tollgate/ratelimit';
import { monthPeriod } from '../../apps/gateway/src/limits/enforce-limits';
import { freePort, testEnv, testRedis, uniquePrefix, waitFor } from '../harness';
import {
  issueKey,
  makeApi,
  makePlan,
  makeSnapshot,
  publishSnapshot,
  revokeKey,
  spawnGateway,
  startUpstream,
  type GatewayProcess,
  type Upstream,
} from './fixtures';

async function get(port: number, host: string, key: string, p = '/echo/x') {
  const res = await request(`http://127.0.0.1:${port}${p}`, { headers: { host, 'x-api-key': key } });
  await res.body.dump();
  return res.statusCode;
}

/** Every usage event in the queue's job hashes, read with plain reads (works under CLIENT PAUSE WRITE). */
async function readUsageEvents(r: Redis, ks: Keyspace): Promise<Map<string, UsageEvent>> {
  const out = new Map<string, UsageEvent>();
  const base = `${ks.bullPrefix}:${QUEUES.usage}:`;
  let cursor = '0';
  do {
    const [next, keys] = await r.scan(cursor, 'MATCH', `${base}*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      if (!/^[0-9A-HJKMNP-TV-Z]{26}$/.test(key.slice(base.length))) continue;
      const data = await r.hget(key, 'data');
      if (!data) continue;
      for (const e of (JSON.parse(data) as UsageBatch).events) out.set(e.id, e);
    }
  } while (cursor !== '0');
  return out;
}

describe('two gateway processes on one Redis', () => {
  let redis: Redis;
  let ks: Keyspace;
  let upstream: Upstream;
  let gws: GatewayProcess[] = [];
  let host: string;
  let tenantId: string;
  let plan: ReturnType<typeof makePlan>;
  let api: ReturnType<typeof makeApi>;

  beforeAll(async () => {
    redis = testRedis();
    const prefix = uniquePrefix('mp');
    ks = createKeyspace(prefix);
    upstream = await startUpstream();
    api = makeApi(upstream.url);
    plan = makePlan([api.id], { rateLimit: { limit: 25, windowSeconds: 60, algorithm: 'sliding_window' } });
    const snap = makeSnapshot([api], [plan]);
    tenantId = snap.tenantId;
    host = `${snap.tenantSlug}.localhost`;
    await publishSnapshot(redis, ks, snap);
    // A generous Redis timeout: this suite proves the shared limit, not the fail-open path (which a
    // busy CI machine could otherwise trigger with the 50 ms default).
    const env = { REDIS_URL: testEnv().redisUrl, REDIS_PREFIX: prefix, GATEWAY_REDIS_TIMEOUT_MS: '2000' };
    gws = await Promise.all(
      [0, 1].map((i) =>
        spawnGateway({ ...env, GATEWAY_SPOOL_DIR: mkdtempSync(path.join(tmpdir(), `tg-mp${i}-`)), GATEWAY_INSTANCE_ID: `mp-${i}` }),
      ),
    );
  }, 60_000);

  afterAll(async () => {
    await Promise.all(gws.map((g) => g.stop()));
    await upstream?.close();
    await redis?.quit();
  });

  it('let through no more than the limit in a window, together', async () => {
    const k = await issueKey(redis, ks, tenantId, plan);
    // 15 through the first process, then a concurrent burst across both: the second process
    // must see the first one's count, so only 10 more pass in total.
    for (let i = 0; i < 15; i++) expect(await get(gws[0]!.port, host, k.key)).toBe(200);
    const statuses = await Promise.all(Array.from({ length: 60 }, (_, i) => get(gws[i % 2]!.port, host, k.key)));
    expect(statuses.filter((s) => s === 200).length).toBe(10);
    expect(statuses.filter((s) => s === 429).length).toBe(50);
    for (const g of gws) {
      const text = await (await request(`http://127.0.0.1:${g.adminPort}/metrics`)).body.text();
      expect(text).not.toMatch(/limiter_decisions_total\{result="\w+",source="memory"\}/);
    }
  });

  it('with limit reservations, let no more than a quota through together, and Redis counts exactly the calls made', async () => {
    const quotaPlan = makePlan([api.id], {
      rateLimit: { limit: 1_000_000, windowSeconds: 3600, algorithm: 'sliding_window' },
      quota: { limit: 2000, mode: 'hard_cap' },
    });
    await publishSnapshot(redis, ks, makeSnapshot([api], [plan, quotaPlan], { tenantId, version: 2, tenantSlug: host.split('.')[0]! }));
    const k = await issueKey(redis, ks, tenantId, quotaPlan);
    const statuses: number[] = [];
    // Both processes know the plan once it answers 200 on each (those calls count too).
    for (const g of gws) await waitFor(async () => (await get(g.port, host, k.key)) === 200, { what: 'the quota plan on every gateway' });
    statuses.push(200, 200);
    let left = 3000;
    await Promise.all(
      Array.from({ length: 16 }, async (_, i) => {
        while (left-- > 0) statuses.push(await get(gws[i % 2]!.port, host, k.key));
      }),
    );
    const allowed = statuses.filter((s) => s === 200).length;
    expect(allowed).toBeLessThanOrEqual(2000);
    // Refused early by at most what the other process still held unused (k ≤ 1% of 2,000).
    expect(allowed).toBeGreaterThanOrEqual(2000 - 2 * 20);
    expect(statuses.filter((s) => s !== 200).every((s) => s === 429)).toBe(true);
    for (const g of gws) {
      const text = await (await request(`http://127.0.0.1:${g.adminPort}/metrics`)).body.text();
      expect(text).toMatch(/tollgate_gateway_limit_reserved_calls_total\{use="decided"\} [1-9]/);
    }
    // Idle blocks are given back: the quota counter comes down to exactly the calls let through.
    const counter = createLimitKeys(ks, { keyId: k.record.keyId, subscriptionId: k.record.subscriptionId }).quota(
      monthPeriod(Date.now()).start,
    );
    await waitFor(async () => Number(await redis.get(counter)) === allowed, { what: `quota counter at ${allowed}` });
  });

  it('refuse a key revoked in Redis on both within 1 s', async () => {
    const k = await issueKey(redis, ks, tenantId, plan);
    for (const g of gws) expect(await get(g.port, host, k.key)).toBe(200);
    const t0 = Date.now();
    await revokeKey(redis, ks, k);
    await waitFor(async () => (await Promise.all(gws.map((g) => get(g.port, host, k.key)))).every((s) => s === 401), {
      timeoutMs: 1000,
      intervalMs: 5,
      what: 'revocation on both gateways',
    });
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('serve /healthz, /readyz and /metrics on the admin port only', async () => {
    const g = gws[0]!;
    const health = await request(`http://127.0.0.1:${g.adminPort}/healthz`);
    expect(health.statusCode).toBe(200);
    await health.body.dump();
    const ready = await request(`http://127.0.0.1:${g.adminPort}/readyz`);
    expect(ready.statusCode).toBe(200);
    expect(((await ready.body.json()) as { tenants: number }).tenants).toBeGreaterThanOrEqual(1);
    const metrics = await request(`http://127.0.0.1:${g.adminPort}/metrics`);
    const text = await metrics.body.text();
    expect(text).toContain('tollgate_gateway_requests_total');
    expect(text).toContain('tollgate_gateway_limiter_decisions_total');
    expect(text).toContain('tollgate_gateway_config_version');
    const post = await request(`http://127.0.0.1:${g.adminPort}/metrics`, { method: 'POST', body: 'x' });
    expect(post.statusCode).toBe(405);
    await post.body.dump();
    const unknown = await request(`http://127.0.0.1:${g.adminPort}/../etc/passwd`);
    expect(unknown.statusCode).toBe(404);
    await unknown.body.dump();
    const notHere = await request(`http://127.0.0.1:${g.port}/metrics`, { headers: { host } });
    expect(notHere.statusCode).toBe(404);
    await notHere.body.dump();
  });
});

describe('cluster mode', () => {
  it('runs one worker per GATEWAY_WORKERS, aggregates metrics on the primary and exits cleanly on SIGTERM', async () => {
    const redis = testRedis();
    const ks = createKeyspace(uniquePrefix('cl'));
    const upstream = await startUpstream();
    const api = makeApi(upstream.url);
    const plan = makePlan([api.id]);
    const snap = makeSnapshot([api], [plan]);
    await publishSnapshot(redis, ks, snap);
    const k = await issueKey(redis, ks, snap.tenantId, plan);
    // The primary is started without --single-threaded-gc: it gives its workers the flag itself.
    const g = await spawnGateway(
      {
        REDIS_URL: testEnv().redisUrl,
        REDIS_PREFIX: ks.prefix,
        GATEWAY_WORKERS: '2',
        GATEWAY_SPOOL_DIR: mkdtempSync(path.join(tmpdir(), 'tg-cl-')),
      },
      { nodeFlags: [] },
    );
    try {
      await waitFor(async () => (await request(`http://127.0.0.1:${g.adminPort}/readyz`)).statusCode === 200, {
        timeoutMs: 15_000,
        what: 'both workers ready',
      });
      const host = `${snap.tenantSlug}.localhost`;
      for (let i = 0; i < 10; i++) expect(await get(g.port, host, k.key)).toBe(200);
      const text = await (await request(`http://127.0.0.1:${g.adminPort}/metrics`)).body.text();
      expect(text).toContain(`tollgate_gateway_requests_total{tenant="${snap.tenantId}",api="${api.id}",status="200"} 10`);
      const listening = g.logs.filter((l) => l.includes('"gateway listening"')).map((l) => JSON.parse(l) as { gc: string });
      expect(listening.map((l) => l.gc)).toEqual(['single-threaded', 'single-threaded']);
    } finally {
      expect(await g.stop('SIGTERM')).toBe(0);
      await upstream.close();
      await redis.quit();
    }
  }, 60_000);

  it('a single process says which GC it runs with, and how to start it when the flag is missing', async () => {
    const ks = createKeyspace(uniquePrefix('gc'));
    const env = { REDIS_URL: testEnv().redisUrl, REDIS_PREFIX: ks.prefix, GATEWAY_SPOOL_DIR: mkdtempSync(path.join(tmpdir(), 'tg-gc-')) };
    const listening = (g: { logs: string[] }) => JSON.parse(g.logs.find((l) => l.includes('"gateway listening"'))!) as { gc: string };
    const warned = (g: { logs: string[] }) =>
      g.logs.some((l) => l.includes('"level":40') && l.includes('node --single-threaded-gc dist/main.js'));
    const bare = await spawnGateway(env, { nodeFlags: [] });
    const flagged = await spawnGateway({ ...env, GATEWAY_SPOOL_DIR: mkdtempSync(path.join(tmpdir(), 'tg-gc-')) });
    const off = await spawnGateway(
      { ...env, GATEWAY_SPOOL_DIR: mkdtempSync(path.join(tmpdir(), 'tg-gc-')), GATEWAY_SINGLE_THREADED_GC: 'false' },
      { nodeFlags: [] },
    );
    try {
      expect(listening(bare).gc).toBe('v8-default');
      expect(warned(bare)).toBe(true);
      expect(listening(flagged).gc).toBe('single-threaded');
      expect(warned(flagged)).toBe(false);
      expect(listening(off).gc).toBe('v8-default');
      expect(warned(off)).toBe(false);
    } finally {
      for (const g of [bare, flagged, off]) expect(await g.stop('SIGTERM')).toBe(0);
    }
  }, 60_000);
});

describe('Redis stopped and started under load', () => {
  let redisProc: ChildProcess | null = null;
  let redisPort: number;
  let gw: GatewayProcess | null = null;
  let upstream: Upstream;

  async function startRedis(): Promise<void> {
    redisProc = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    redisProc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    await waitFor(() => out.includes('Ready to accept connections'), { timeoutMs: 10_000, what: 'redis-server' });
  }

  async function stopRedis(): Promise<void> {
    const p = redisProc!;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
    redisProc = null;
  }

  afterAll(async () => {
    if (gw) await gw.stop('SIGKILL');
    if (redisProc) await stopRedis();
    await upstream?.close();
  });

  it('keeps serving and every usage event reaches the queue afterwards', async () => {
    redisPort = await freePort();
    await startRedis();
    const redisUrl = `redis://127.0.0.1:${redisPort}`;
    const ks = createKeyspace('tgrestart');
    let admin = new Redis(redisUrl, { maxRetriesPerRequest: null });
    upstream = await startUpstream();
    const api = makeApi(upstream.url);
    const closed = makeApi(upstream.url, { basePath: '/closed', failMode: 'closed' });
    const plan = makePlan([api.id, closed.id], {
      rateLimit: { limit: 100_000, windowSeconds: 60, algorithm: 'gcra' },
      quota: { limit: 1_000_000, mode: 'hard_cap' },
    });
    const snap = makeSnapshot([api, closed], [plan]);
    const host = `${snap.tenantSlug}.localhost`;
    const publish = async (r: Redis) => {
      await publishSnapshot(r, ks, snap);
      return issueKey(r, ks, snap.tenantId, plan);
    };
    const k = await publish(admin);
    gw = await spawnGateway({
      REDIS_URL: redisUrl,
      REDIS_PREFIX: ks.prefix,
      GATEWAY_SPOOL_DIR: mkdtempSync(path.join(tmpdir(), 'tg-restart-')),
      GATEWAY_REDIS_TIMEOUT_MS: '50',
      GATEWAY_RESYNC_INTERVAL_MS: '500',
      GATEWAY_INSTANCE_ID: 'restart-0',
    });

    // Load: four clients in a loop; every response is tallied by phase.
    const tally: Record<string, Record<number, number>> = { before: {}, down: {}, after: {} };
    let phase: keyof typeof tally = 'before';
    let sent = 0;
    let answered = 0;
    let transportErrors = 0;
    let running = true;
    const port = gw.port;
    const client = async () => {
      while (running) {
        sent++;
        try {
          const s = await get(port, host, k.key);
          answered++;
          tally[phase]![s] = (tally[phase]![s] ?? 0) + 1;
        } catch {
          transportErrors++;
        }
      }
    };
    const clients = Array.from({ length: 4 }, client);
    await waitFor(() => answered >= 100, { timeoutMs: 10_000, what: '100 answers' });
    await waitFor(async () => (await readUsageEvents(admin, ks)).size > 0, { timeoutMs: 5000, what: 'a first batch in the queue' });

    phase = 'down';
    // Freeze writes, read what the queue holds, then kill: this Redis keeps no data, so whatever
    // reached it must be counted now. Writes blocked by the pause are never applied; the gateway
    // sees them time out and spools them.
    await admin.client('PAUSE', '60000', 'WRITE');
    const beforeKill = await readUsageEvents(admin, ks);
    admin.disconnect();
    await stopRedis();
    const atDown = answered;
    await waitFor(() => answered >= atDown + 300, { timeoutMs: 15_000, what: '300 answers with Redis down' });
    // An API that fails closed refuses instead of guessing; its refusal is metered like any other.
    expect(await get(port, host, k.key, '/closed/x')).toBe(503);
    const closedRefusals = 1;

    await startRedis();
    // Until the republish below, this empty Redis says the key doesn't exist: 401s are right then.
    phase = 'after';
    admin = new Redis(redisUrl, { maxRetriesPerRequest: null });
    // The data didn't survive (no persistence): the control plane republishes, as publish:all does.
    await publishSnapshot(admin, ks, snap);
    await admin.set(ks.key(k.hash), JSON.stringify(k.record));
    const atUp = answered;
    await waitFor(() => answered >= atUp + 200, { timeoutMs: 15_000, what: '200 answers after Redis returned' });
    running = false;
    await Promise.all(clients);

    expect(transportErrors).toBe(0);
    expect(answered).toBe(sent);
    // Fail-open with cached keys: every request during the outage was served.
    expect(Object.keys(tally.down!)).toEqual(['200']);
    expect(tally.before).toEqual({ 200: tally.before![200] });
    expect(tally.after![200]).toBeGreaterThan(0);

    // Spooled batches are replayed once the producer's connection is back; wait for that rather
    // than racing the reconnect backoff, then stop cleanly.
    await waitFor(async () => new Set([...beforeKill.keys(), ...(await readUsageEvents(admin, ks)).keys()]).size >= answered + 1, {
      timeoutMs: 20_000,
      intervalMs: 100,
      what: 'every usage event in the queue',
    });
    expect(await gw.stop('SIGTERM')).toBe(0);
    gw = null;
    const afterRestart = await readUsageEvents(admin, ks);
    const ids = new Set([...beforeKill.keys(), ...afterRestart.keys()]);
    expect(beforeKill.size).toBeGreaterThan(0);
    expect(afterRestart.size).toBeGreaterThan(0);
    expect(ids.size).toBe(answered + closedRefusals);
    const all = [...beforeKill.values(), ...afterRestart.values()];
    expect(all.filter((e) => e.rejected === 'unavailable').length).toBe(closedRefusals);
    const rejected = all.filter((e) => e.rejected !== null).length;
    expect(rejected).toBe(
      closedRefusals +
        Object.entries({ ...tally.after })
          .filter(([s]) => s !== '200')
          .reduce((n, [, c]) => n + c, 0),
    );
    await admin.quit();
  }, 90_000);
});
