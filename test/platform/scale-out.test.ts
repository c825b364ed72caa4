// The compose topology without a container engine: three gateway processes behind nginx
// (Debian's, running infra/nginx/gateway-lb.conf with only its compose-only lines swapped for
// local ports), Redis, PostgreSQL, the worker and an upstream. Open-loop load while one gateway
// is SIGTERMed and another SIGKILLed: clients see no errors (nginx retries an idempotent request
// whose replica refused or dropped it), and billed = served, less what the SIGKILLed process
// still held in memory (docs/adr/0015-configuration-as-code-and-deployment-topology.md).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrismaClient, newId, republishAll, type Db } from '@tollgate/db';
import { displayPrefix, generateApiKey, hashApiKey } from '@tollgate/keys';
import { createKeyspace, QUEUES } from '@tollgate/policy';
import { cloneRunDatabase, freePort, testEnv, testRedis, uniquePrefix, waitFor } from '../harness';
import { root, spawnGateway, type GatewayProcess } from '../gateway/fixtures';
import { spawnWorker, type WorkerProcess } from '../worker/worker-process';

const NGINX = '/usr/sbin/nginx';
const RATE = 200; // requests per second, open loop
const DURATION_MS = 12_000;
const BATCH_WAIT_MS = 100; // GATEWAY_USAGE_BATCH_WAIT_MS: the longest an event sits in memory

/** infra/nginx/gateway-lb.conf for local processes: the compose-only lines become local ones. */
function localLbConfig(gatewayPorts: number[], lbPort: number, healthPort: number): string {
  const conf = readFileSync(path.join(root, 'infra/nginx/gateway-lb.conf'), 'utf8');
  const kept = conf.split('\n').filter((l) => !l.includes('# compose-only'));
  const out = kept.join('\n');
  expect(out).not.toMatch(/\bgateway:8080\b|127\.0\.0\.11/);
  return out
    .replace(
      /(upstream tollgate_gateways \{\n\s+zone [^\n]+\n)/,
      `$1${gatewayPorts.map((p) => `    server 127.0.0.1:${p} max_fails=1 fail_timeout=5s; # local`).join('\n')}\n`,
    )
    .replace('listen 8080 reuseport;', `listen 127.0.0.1:${lbPort}; # local`)
    .replace('listen 127.0.0.1:8081;', `listen 127.0.0.1:${healthPort}; # local`)
    .replace(
      'proxy_pass http://tollgate_gateways;',
      'proxy_pass http://tollgate_gateways;\n        add_header X-Served-By $upstream_addr always; # local',
    );
}

async function startNginx(dir: string, conf: string, healthPort: number): Promise<ChildProcess> {
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(path.join(dir, d), { recursive: true });
  writeFileSync(path.join(dir, 'gateway-lb.conf'), conf);
  writeFileSync(
    path.join(dir, 'nginx.conf'),
    `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  include ${dir}/gateway-lb.conf;
}
`,
  );
  const check = spawnSync(NGINX, ['-t', '-c', path.join(dir, 'nginx.conf'), '-p', dir, '-e', path.join(dir, 'error.log')], {
    encoding: 'utf8',
  });
  expect(check.status, check.stderr).toBe(0);
  const proc = spawn(NGINX, ['-c', path.join(dir, 'nginx.conf'), '-p', dir, '-e', path.join(dir, 'error.log')], { stdio: 'ignore' });
  await waitFor(async () => (await fetch(`http://127.0.0.1:${healthPort}/lb-healthz`)).ok, { timeoutMs: 10_000, what: 'nginx' });
  return proc;
}

type Outcome = { status: number | null; servedBy: string; at: number };

/** The upstream in a process of its own: in the test's process it would compete with the load generator. */
async function startUpstreamProcess(): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      '-e',
      `require('node:http').createServer((q, s) => { q.resume(); q.on('end', () => s.end('{"ok":true}')); }).listen(${port}, '127.0.0.1')`,
    ],
    { stdio: 'ignore' },
  );
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(url)).ok, { timeoutMs: 10_000, what: 'the upstream process' });
  return { url, child };
}

describe('three gateways behind nginx, one SIGTERMed and one SIGKILLed under load', () => {
  let db: Db;
  let database: { url: string; drop: () => Promise<void> };
  let upstream: { url: string; child: ChildProcess };
  let nginx: ChildProcess | null = null;
  let worker: WorkerProcess | null = null;
  const gateways: GatewayProcess[] = [];
  const redis = testRedis();
  const keyspace = createKeyspace(uniquePrefix('scale'));
  let subscriptionId = '';
  let host = '';
  let key = '';

  beforeAll(async () => {
    database = await cloneRunDatabase('scale');
    db = createPrismaClient(database.url, { max: 4 });
    upstream = await startUpstreamProcess();
    const tenantId = newId('tenant');
    const slug = `scale-${tenantId.slice(-8)}`;
    host = `${slug}.localhost`;
    const now = new Date();
    await db.tenant.create({ data: { id: tenantId, slug, name: 'Scale', allowPrivateTargets: true } });
    const apiId = newId('api');
    await db.api.create({
      data: {
        id: apiId,
        tenantId,
        name: 'Echo',
        slug: 'echo',
        basePath: '/echo',
        // Generous: on a starved machine a slow answer must not turn into a gateway 504.
        headersTimeoutMs: 60_000,
        requestTimeoutMs: 60_000,
        targets: { create: [{ id: newId('target'), url: upstream.url }] },
        routes: { create: [{ id: newId('route'), path: '/*' }] },
      },
    });
    const planId = newId('plan');
    await db.plan.create({
      data: { id: planId, tenantId, name: 'Big', slug: 'big', rateLimit: 100_000, rateWindowSeconds: 1, planApis: { create: [{ apiId }] } },
    });
    const consumerId = newId('consumer');
    await db.consumer.create({ data: { id: consumerId, tenantId, email: 'load@example.com', name: 'Load' } });
    subscriptionId = newId('subscription');
    await db.subscription.create({
      data: {
        id: subscriptionId,
        tenantId,
        consumerId,
        planId,
        currentPeriodStart: new Date(now.getTime() - 86_400_000),
        currentPeriodEnd: new Date(now.getTime() + 29 * 86_400_000),
      },
    });
    key = generateApiKey('live');
    await db.apiKey.create({
      data: { id: newId('key'), tenantId, consumerId, subscriptionId, hash: hashApiKey(key), prefix: displayPrefix(key) },
    });
    await republishAll({ db, redis, keyspace });

    const common = {
      REDIS_URL: testEnv().redisUrl,
      REDIS_PREFIX: keyspace.prefix,
      GATEWAY_USAGE_BATCH_WAIT_MS: String(BATCH_WAIT_MS),
      GATEWAY_SHUTDOWN_GRACE_MS: '10000',
      GATEWAY_REDIS_TIMEOUT_MS: '1000',
      LOG_LEVEL: 'warn',
    };
    gateways.push(
      ...(await Promise.all(
        [0, 1, 2].map((i) =>
          spawnGateway(
            {
              ...common,
              LOG_LEVEL: 'info',
              GATEWAY_INSTANCE_ID: `lb-${i}`,
              GATEWAY_SPOOL_DIR: mkdtempSync(path.join(tmpdir(), `tg-lb${i}-`)),
            },
            { startTimeoutMs: 90_000 },
          ),
        ),
      )),
    );
    worker = await spawnWorker({
      DATABASE_URL: database.url,
      REDIS_URL: testEnv().redisUrl,
      REDIS_PREFIX: keyspace.prefix,
      WORKER_CONCURRENCY: '8',
      METER_REPORT_EVERY_MS: '3600000',
      COMPACT_EVERY_MS: '3600000',
      RECONCILE_EVERY_MS: '3600000',
      REDIS_RESTORE_CHECK_MS: '0',
    });
  }, 180_000);

  afterAll(async () => {
    nginx?.kill('SIGKILL');
    for (const g of gateways) if (g.child.exitCode === null && g.child.signalCode === null) await g.stop('SIGKILL');
    if (worker && worker.child.exitCode === null) worker.child.kill('SIGKILL');
    upstream?.child.kill('SIGKILL');
    redis.disconnect();
    await db?.$disconnect();
    await database?.drop();
  });

  it('answers every request and bills what it served, within the documented bound for the SIGKILLed process', async () => {
    const [lbPort, healthPort] = [await freePort(), await freePort()];
    const dir = mkdtempSync(path.join(tmpdir(), 'tg-nginx-'));
    nginx = await startNginx(
      dir,
      localLbConfig(
        gateways.map((g) => g.port),
        lbPort,
        healthPort,
      ),
      healthPort,
    );
    const lb = `http://127.0.0.1:${lbPort}`;
    // Every replica serves the tenant before the clock starts.
    for (const g of gateways) {
      await waitFor(
        async () => (await request(`http://127.0.0.1:${g.port}/echo/warm`, { headers: { host, 'x-api-key': key } })).statusCode === 200,
        { timeoutMs: 30_000, what: `gateway ${g.port} serving the tenant` },
      );
    }
    const warmups = gateways.length;

    const agent = new Agent({ connections: 256, keepAliveTimeout: 10_000 });
    const outcomes: Outcome[] = [];
    let inFlight = 0;
    let inFlightAtKill = -1;
    const started = performance.now();
    const send = async () => {
      inFlight++;
      try {
        const res = await request(`${lb}/echo/item?n=${outcomes.length}`, {
          headers: { host, 'x-api-key': key },
          dispatcher: agent,
          // Correctness, not latency, is under test: a slow answer on a busy machine is still an answer.
          headersTimeout: 60_000,
          bodyTimeout: 60_000,
        });
        await res.body.dump();
        const servedBy =
          String(res.headers['x-served-by'] ?? '')
            .split(', ')
            .at(-1) ?? '';
        outcomes.push({ status: res.statusCode, servedBy, at: performance.now() });
      } catch {
        outcomes.push({ status: null, servedBy: '', at: performance.now() });
      } finally {
        inFlight--;
      }
    };
    const pending: Promise<void>[] = [];
    let sent = 0;
    const terminated = gateways[0]!;
    const killed = gateways[1]!;
    let termAt = 0;
    let killAt = 0;
    let termExit: Promise<number | null> | null = null;
    // Open loop: requests leave on schedule whether or not earlier ones have been answered.
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        const elapsed = performance.now() - started;
        const due = Math.min(Math.floor((elapsed / 1000) * RATE), (DURATION_MS / 1000) * RATE);
        while (sent < due) {
          sent++;
          pending.push(send());
        }
        if (!termAt && elapsed > DURATION_MS * 0.3) {
          termAt = performance.now();
          termExit = terminated.stop('SIGTERM');
        }
        if (!killAt && elapsed > DURATION_MS * 0.6) {
          killAt = performance.now();
          inFlightAtKill = inFlight;
          killed.child.kill('SIGKILL');
        }
        if (sent >= (DURATION_MS / 1000) * RATE) {
          clearInterval(tick);
          resolve();
        }
      }, 5);
    });
    await Promise.all(pending);
    await agent.close();
    expect(await termExit).toBe(0);

    const errors = outcomes.filter((o) => o.status === null || o.status >= 500);
    const served = outcomes.filter((o) => o.status === 200);
    const byGateway = (port: number) => served.filter((o) => o.servedBy.endsWith(`:${port}`));
    // No client errors: a refused or reset connection is retried on the next replica.
    expect(errors.map((o) => o.status)).toEqual([]);
    expect(served.length).toBe(outcomes.length);
    expect(outcomes.length).toBe((DURATION_MS / 1000) * RATE);
    // The load really was spread, and the stopped replicas stopped serving.
    for (const g of gateways) expect(byGateway(g.port).length, `served by ${g.port}`).toBeGreaterThan(0);
    expect(killed.child.signalCode).toBe('SIGKILL');
    const survivor = gateways[2]!;
    expect(byGateway(survivor.port).filter((o) => o.at > killAt + 1000).length, 'the last replica carried on alone').toBeGreaterThan(0);

    // Billed = served, once the worker has applied every batch.
    const queue = new Queue(QUEUES.usage, { connection: redis, prefix: keyspace.bullPrefix });
    const ledger = async () =>
      Number((await db.ledgerLine.aggregate({ where: { subscriptionId }, _sum: { quantity: true } }))._sum.quantity ?? 0n);
    let last = -1;
    await waitFor(
      async () => {
        const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
        const now = await ledger();
        const settled = Object.values(counts).every((n) => n === 0) && now === last;
        last = now;
        return settled;
      },
      { timeoutMs: 60_000, intervalMs: 1000, what: 'the worker to apply every batch' },
    );
    await queue.close();
    const billed = await ledger();
    const servedTotal = served.length + warmups;
    // What the SIGKILLed process had not yet handed to Redis: events of its last batch window
    // (plus scheduling slack on this busy machine); everything else is billed exactly once.
    const lost = servedTotal - billed;
    const atRisk = byGateway(killed.port).filter((o) => o.at > killAt - (BATCH_WAIT_MS + 1000)).length;
    expect(lost, `lost ${lost}, at risk ${atRisk}, in flight at kill ${inFlightAtKill}`).toBeGreaterThanOrEqual(-inFlightAtKill);
    expect(lost).toBeLessThanOrEqual(atRisk);
    // For the report: how much a SIGKILL cost here.
    process.stdout.write(
      `[scale-out] ${outcomes.length} requests at ${RATE}/s, 0 errors; served ${servedTotal}, billed ${billed}, lost to SIGKILL ${lost} (bound ${atRisk}; in flight at kill ${inFlightAtKill})\n`,
    );
  }, 240_000);
});
