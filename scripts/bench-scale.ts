// Growth benchmark (a script, not a test): `npm run bench:scale -- --tenants=10000 --keys=100000`.
//
// Seeds N tenants (3 APIs with one route and one target each, 2 plans, 1 consumer and
// subscription) and M keys with bulk SQL into a fresh database named for this run, runs
// `publish:all` (the real CLI) against a Redis prefix of its own while a gateway (2 workers) is
// running, then prints: publish:all time (first run and an unchanged rerun), gateway CPU during
// the publish (until both workers caught up), boot to first 200, RSS per worker, plan change →
// enforced latency (console-style transaction + outbox relay → first 429), Redis memory (delta and
// per key / per snapshot by MEMORY USAGE samples). Everything it created is dropped at the end.
//
// Env/flags: --tenants (BENCH_TENANTS, 1000), --keys (BENCH_KEYS, 100000), --workers (2),
// DATABASE_URL (an admin URL on the server to create the run's database in; default
// postgresql://postgres@127.0.0.1:5432/postgres), REDIS_URL (default redis://127.0.0.1:6379).
import { spawnSync, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { createPrismaClient, enqueuePolicyPublish, startOutboxRelay } from '@tollgate/db';
import { createKeyspace } from '@tollgate/policy';
import { displayPrefix, generateApiKey, hashApiKey } from '@tollgate/keys';
import { bundleGateway, childPids, freePort, procCpuMs, root, rssMb, spawnGateway } from './bench/gateway-process';

const { values: flags } = parseArgs({
  options: { tenants: { type: 'string' }, keys: { type: 'string' }, workers: { type: 'string' } },
  strict: true,
});
const N = Number(flags.tenants ?? process.env.BENCH_TENANTS ?? 1000);
const M = Number(flags.keys ?? process.env.BENCH_KEYS ?? 100_000);
const WORKERS = Number(flags.workers ?? 2);
const adminUrl = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const run = `${Date.now().toString(36)}${process.pid}`;
const dbName = `tollgate_bench_scale_${run}`;
const prefix = `bench_scale_${run}`;
const keyspace = createKeyspace(prefix);
const dbUrl = (() => {
  const u = new URL(adminUrl);
  u.pathname = `/${dbName}`;
  return u.toString();
})();
const results: [string, string][] = [];
const out = (name: string, value: string) => {
  results.push([name, value]);
  process.stdout.write(`  ${name}: ${value}\n`);
};
const ms = (t: number) => `${Math.round(t)} ms`;
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));

let gateway: ChildProcess | null = null;
let gatewayLog = '';
const work = mkdtempSync(path.join(tmpdir(), 'tg-bench-scale-'));
let port = 0;
let adminPort = 0;
function startGateway(): ChildProcess {
  gatewayLog = '';
  const child = spawnGateway({
    redisUrl,
    prefix,
    port,
    adminPort,
    workers: WORKERS,
    spoolDir: path.join(work, 'spool'),
    env: { GATEWAY_ALLOW_PRIVATE_TARGETS: 'true' },
  });
  child.stdout!.on('data', (c) => (gatewayLog = (gatewayLog + c).slice(-20_000)));
  child.stderr!.on('data', (c) => (gatewayLog = (gatewayLog + c).slice(-20_000)));
  gateway = child;
  return child;
}
async function stopGateway(): Promise<void> {
  const g = gateway;
  gateway = null;
  if (!g || g.exitCode !== null) return;
  const exited = new Promise((r) => g.once('exit', r));
  g.kill('SIGTERM');
  await Promise.race([exited, sleep(15_000)]);
  if (g.exitCode === null) g.kill('SIGKILL');
}
const gatewayPids = () => (gateway?.pid ? [gateway.pid, ...childPids(gateway.pid)] : []);
const gatewayCpu = () => gatewayPids().reduce((s, p) => s + procCpuMs(p), 0);

async function call(host: string, key: string): Promise<number> {
  try {
    const res = await request(`http://127.0.0.1:${port}/a1/hello`, { headers: { host, 'x-api-key': key }, headersTimeout: 5000 });
    await res.body.dump();
    return res.statusCode;
  } catch {
    return 0;
  }
}

// ---------------------------------------------------------------- main
async function main(): Promise<void> {
  process.stdout.write(`bench:scale — ${N} tenants, ${M} keys, gateway ${WORKERS} workers (db ${dbName}, prefix ${prefix})\n`);
  bundleGateway();
  port = await freePort();
  adminPort = await freePort();

  const upstream: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`;

  // Short-lived admin connections: test harnesses on a shared server may terminate idle ones.
  const adminQuery = async (sql: string) => {
    const admin = new pg.Client({ connectionString: adminUrl });
    admin.on('error', () => undefined);
    await admin.connect();
    try {
      await admin.query(sql);
    } finally {
      await admin.end().catch(() => undefined);
    }
  };
  await adminQuery(`CREATE DATABASE "${dbName}"`);
  const redis = new Redis(redisUrl);
  let relay: ReturnType<typeof startOutboxRelay> | null = null;
  const db = createPrismaClient(dbUrl, { max: 4 });
  try {
    const mig = spawnSync(process.execPath, [path.join(root, 'scripts/db.mjs'), 'migrate', dbUrl], { cwd: root, encoding: 'utf8' });
    if (mig.status !== 0) throw new Error(`migrate failed:\n${mig.stdout}${mig.stderr}`);

    // ---- seed (bulk SQL)
    const seedStarted = performance.now();
    const c = new pg.Client({ connectionString: dbUrl });
    c.on('error', () => undefined);
    await c.connect();
    const t = (i: string) => `'ten_b' || lpad((${i})::text, 7, '0')`;
    await c.query(`INSERT INTO "Tenant" (id, slug, name, "policyVersion", "updatedAt")
      SELECT ${t('i')}, 'b' || i, 'Bench ' || i, 1, now() FROM generate_series(1, ${N}) i`);
    await c.query(`INSERT INTO "Api" (id, "tenantId", name, slug, "basePath", "updatedAt")
      SELECT 'api_b' || i || '_' || j, ${t('i')}, 'API ' || j, 'a' || j, '/a' || j, now()
      FROM generate_series(1, ${N}) i, generate_series(1, 3) j`);
    await c.query(`INSERT INTO "Route" (id, "apiId", path, methods, "updatedAt")
      SELECT 'rte_' || substr(a.id, 5), a.id, '/*', ARRAY['GET','POST'], now() FROM "Api" a`);
    await c.query(
      `INSERT INTO "UpstreamTarget" (id, "apiId", url, "updatedAt") SELECT 'tgt_' || substr(a.id, 5), a.id, $1, now() FROM "Api" a`,
      [upstreamUrl],
    );
    await c.query(`INSERT INTO "Plan" (id, "tenantId", name, slug, "rateLimit", "monthlyQuota", "updatedAt")
      SELECT 'pln_b' || i || '_' || p, ${t('i')}, p, p, CASE p WHEN 'free' THEN 1000 ELSE 10000 END, 100000000, now()
      FROM generate_series(1, ${N}) i, unnest(ARRAY['free','pro']) p`);
    await c.query(`INSERT INTO "PlanApi" ("planId", "apiId")
      SELECT p.id, a.id FROM "Plan" p JOIN "Api" a ON a."tenantId" = p."tenantId"`);
    await c.query(`INSERT INTO "Consumer" (id, "tenantId", email, name, "updatedAt")
      SELECT 'con_b' || i, ${t('i')}, 'dev' || i || '@bench.test', 'Dev', now() FROM generate_series(1, ${N}) i`);
    await c.query(`INSERT INTO "Subscription" (id, "tenantId", "consumerId", "planId", "currentPeriodStart", "currentPeriodEnd", "updatedAt")
      SELECT 'sub_b' || i, ${t('i')}, 'con_b' || i, 'pln_b' || i || '_free', date_trunc('month', now()), date_trunc('month', now()) + interval '1 month', now()
      FROM generate_series(1, ${N}) i`);
    await c.query(`INSERT INTO "ApiKey" (id, "tenantId", "consumerId", "subscriptionId", hash, prefix, env, "updatedAt")
      SELECT 'key_b' || k, ${t(`((k - 1) % ${N}) + 1`)}, 'con_b' || (((k - 1) % ${N}) + 1), 'sub_b' || (((k - 1) % ${N}) + 1),
        encode(sha256(('bench-' || k || '-${run}')::bytea), 'hex'), 'tg_test_x', 'test', now()
      FROM generate_series(1, ${Math.max(0, M - 2)}) k`);
    // Two real keys: tenant 1 (whose plan changes) and tenant 2 (which must not be reloaded).
    const real: string[] = [];
    for (const i of [1, 2]) {
      const secret = generateApiKey('live');
      real.push(secret);
      await c.query(
        `INSERT INTO "ApiKey" (id, "tenantId", "consumerId", "subscriptionId", hash, prefix, env, "updatedAt")
         VALUES ($1, ${t(String(i))}, $2, $3, $4, $5, 'live', now())`,
        [`key_real${i}`, `con_b${i}`, `sub_b${i}`, hashApiKey(secret), displayPrefix(secret)],
      );
    }
    await c.query('ANALYZE');
    await c.end();
    out('seed (bulk SQL)', ms(performance.now() - seedStarted));

    const mem0 = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);

    // ---- gateway running (empty) while publish:all runs
    startGateway();
    const adminReady = async () => {
      for (let i = 0; i < 600; i++) {
        try {
          const r = await request(`http://127.0.0.1:${adminPort}/readyz`);
          await r.body.dump();
          if (r.statusCode === 200) return;
        } catch {
          /* not listening yet */
        }
        await sleep(50);
      }
      throw new Error(`gateway not ready:\n${gatewayLog}`);
    };
    await adminReady();
    await sleep(500);
    const cpuBefore = gatewayCpu();
    const publishAll = (extra: string[] = []) => {
      const started = performance.now();
      const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'apps/worker/src/cli.ts'), 'republish', ...extra], {
        cwd: root,
        encoding: 'utf8',
        env: { ...process.env, DATABASE_URL: dbUrl, REDIS_URL: redisUrl, REDIS_PREFIX: prefix, LOG_LEVEL: 'info' },
        timeout: 600_000,
      });
      if (r.status !== 0) throw new Error(`publish:all failed:\n${r.stdout.slice(-3000)}${r.stderr.slice(-3000)}`);
      return performance.now() - started;
    };
    const publishMs = publishAll();
    out('publish:all (first, every tenant and key)', ms(publishMs));
    // Caught up = the last tenant answers on every worker (requests alternate between workers).
    const lastHost = `b${N}.localhost`;
    const caught = performance.now();
    let streak = 0;
    while (streak < 4 * WORKERS && performance.now() - caught < 120_000) {
      const s = await call(lastHost, 'tg_test_invalid');
      streak = s === 401 || s === 403 ? streak + 1 : 0;
      if (!streak) await sleep(20);
    }
    // …and both workers went quiet again.
    let prev = gatewayCpu();
    for (let i = 0; i < 100; i++) {
      await sleep(250);
      const now = gatewayCpu();
      if (now - prev < 30) break;
      prev = now;
    }
    out('gateway CPU during publish:all (2 workers + primary, until caught up)', ms(gatewayCpu() - cpuBefore));
    out('gateway caught up after publish:all ended', ms(performance.now() - caught));

    const cpuRerun = gatewayCpu();
    out('publish:all again (nothing changed: tenants skipped, keys rewritten)', ms(publishAll()));
    await sleep(500);
    out('gateway CPU during the rerun', ms(gatewayCpu() - cpuRerun));

    // ---- memory
    const mem1 = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);
    let keyBytes = 0;
    let snapBytes = 0;
    const sample = 200;
    for (let i = 0; i < sample; i++) {
      const k = 1 + Math.floor((i * (M - 2)) / sample);
      const hash = (await db.apiKey.findUnique({ where: { id: `key_b${k}` }, select: { hash: true } }))?.hash;
      if (hash) keyBytes += Number((await redis.memory('USAGE', keyspace.key(hash))) ?? 0);
      const tid = `ten_b${String(1 + Math.floor((i * N) / sample)).padStart(7, '0')}`;
      snapBytes += Number((await redis.memory('USAGE', keyspace.policy(tid))) ?? 0);
    }
    const streamBytes = Number((await redis.memory('USAGE', keyspace.policyStream)) ?? 0);
    const versionsBytes = Number((await redis.memory('USAGE', keyspace.policyVersions)) ?? 0);
    out('Redis used_memory delta (shared server: approximate)', `${((mem1 - mem0) / 1048576).toFixed(1)} MB`);
    out(
      'Redis per key record (MEMORY USAGE, sampled)',
      `${Math.round(keyBytes / sample)} B → ${(((keyBytes / sample) * 1e5) / 1048576).toFixed(1)} MB per 100k keys`,
    );
    out(
      'Redis per tenant snapshot (sampled)',
      `${Math.round(snapBytes / sample)} B → ${(((snapBytes / sample) * N) / 1048576).toFixed(1)} MB for ${N}`,
    );
    out('Redis change stream + versions hash', `${(streamBytes / 1048576).toFixed(1)} MB + ${(versionsBytes / 1048576).toFixed(2)} MB`);

    const workerRss = () =>
      gatewayPids()
        .slice(1)
        .map((p) => rssMb(p).toFixed(0));
    // Some traffic on tenant 1 and 2 so the request path is warm.
    for (let i = 0; i < 200; i++) await call(i % 2 ? 'b2.localhost' : 'b1.localhost', real[i % 2]!);
    out('gateway RSS per worker (all tenants loaded)', `${workerRss().join(' / ')} MB`);

    // ---- boot to first 200
    await stopGateway();
    const bootStarted = performance.now();
    startGateway();
    let first = 0;
    while (performance.now() - bootStarted < 120_000) {
      if ((await call('b1.localhost', real[0]!)) === 200) {
        first = performance.now() - bootStarted;
        break;
      }
      await sleep(10);
    }
    out('gateway boot to first 200 (process start, all tenants)', first ? ms(first) : 'timed out');
    await adminReady();
    for (let i = 0; i < 200; i++) await call(i % 2 ? 'b2.localhost' : 'b1.localhost', real[i % 2]!);
    out('gateway RSS per worker after boot', `${workerRss().join(' / ')} MB`);

    // ---- plan change → enforced
    relay = startOutboxRelay({ db, databaseUrl: dbUrl, redis, keyspace });
    const lat: number[] = [];
    for (let round = 0; round < 3; round++) {
      const plan = `pln_b1_free`;
      await db.plan.update({ where: { id: plan }, data: { rateLimit: 1000, rateWindowSeconds: 1 } });
      await db.$transaction((tx) => enqueuePolicyPublish(tx, 'ten_b0000001'));
      await sleep(1500); // the generous limit is in force everywhere
      for (let i = 0; i < 4; i++) await call('b1.localhost', real[0]!);
      const t0 = performance.now();
      await db.$transaction(async (tx) => {
        await tx.plan.update({ where: { id: plan }, data: { rateLimit: 1, rateWindowSeconds: 3600 } });
        await enqueuePolicyPublish(tx, 'ten_b0000001');
      });
      let got = 0;
      while (performance.now() - t0 < 10_000) {
        // Both workers must enforce it: two 429s in a row (requests alternate between workers).
        if ((await call('b1.localhost', real[0]!)) === 429) {
          if (++got >= 2) break;
        } else got = 0;
        await sleep(2);
      }
      lat.push(performance.now() - t0);
    }
    out('plan change → enforced (commit → 429 on both workers, 3 rounds)', lat.map((x) => ms(x)).join(', '));
  } finally {
    await relay?.stop().catch(() => undefined);
    await stopGateway();
    upstream.close();
    await db.$disconnect().catch(() => undefined);
    // Clean up: the run's Redis keys and database.
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 5000);
      cursor = next;
      if (keys.length) await redis.unlink(...keys);
    } while (cursor !== '0');
    redis.disconnect();
    await adminQuery(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
  process.stdout.write(`\n| measure | ${N} tenants / ${M} keys |\n|---|---|\n${results.map(([k, v]) => `| ${k} | ${v} |`).join('\n')}\n`);
}

const deadline = setTimeout(
  () => {
    process.stderr.write('bench:scale: over its time bound; stopping\n');
    gateway?.kill('SIGKILL');
    process.exit(1);
  },
  Number(process.env.BENCH_TIMEOUT_MS ?? 600_000),
);
deadline.unref();
main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench:scale failed: ${(err as Error).stack ?? err}\n${gatewayLog.slice(-3000)}\n`);
    gateway?.kill('SIGKILL');
    process.exit(1);
  },
);
