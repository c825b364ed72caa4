// Two process-level promises of the gateway that only a real process can show: it leaves
// promptly on SIGTERM even while Redis is gone, and cluster workers sharing one
// GATEWAY_INSTANCE_ID each get a spool file of their own.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { Client, request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { createKeyspace } from '@tollgate/policy';
import { spoolFileName } from '@tollgate/usage';
import { freePort, testEnv, testRedis, uniquePrefix, waitFor } from '../harness';
import {
  issueKey,
  makeApi,
  makePlan,
  makeSnapshot,
  publishSnapshot,
  spawnGateway,
  startUpstream,
  testGatewayConfig,
  type GatewayProcess,
} from './fixtures';
import { createGateway } from '../../apps/gateway/src/server';

async function startPrivateRedis(port: number): Promise<ChildProcess> {
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  await waitFor(() => out.includes('Ready to accept connections'), { timeoutMs: 10_000, what: 'redis-server' });
  return proc;
}

describe('gateway process lifecycle', () => {
  const started: GatewayProcess[] = [];
  let redisProc: ChildProcess | null = null;
  afterAll(async () => {
    for (const g of started) if (g.child.exitCode === null && g.child.signalCode === null) await g.stop('SIGKILL');
    if (redisProc && redisProc.exitCode === null) redisProc.kill('SIGKILL');
  });

  for (const fault of ['killed', 'frozen'] as const) {
    it(`a single process whose Redis is ${fault} drains and exits on SIGTERM within seconds, not after a minute`, async () => {
      const port = await freePort();
      redisProc = await startPrivateRedis(port);
      const redisUrl = `redis://127.0.0.1:${port}`;
      const ks = createKeyspace('tglife');
      const admin = new Redis(redisUrl, { maxRetriesPerRequest: null });
      const upstream = await startUpstream();
      const api = makeApi(upstream.url);
      const plan = makePlan([api.id]);
      const snap = makeSnapshot([api], [plan]);
      await publishSnapshot(admin, ks, snap);
      const k = await issueKey(admin, ks, snap.tenantId, plan);
      admin.disconnect();
      const gw = await spawnGateway(
        {
          REDIS_URL: redisUrl,
          REDIS_PREFIX: ks.prefix,
          GATEWAY_SPOOL_DIR: mkdtempSync(path.join(tmpdir(), 'tg-life-')),
          GATEWAY_SHUTDOWN_GRACE_MS: '5000',
        },
        { startTimeoutMs: 90_000 },
      );
      started.push(gw);
      const host = `${snap.tenantSlug}.localhost`;
      const call = async () => {
        const res = await request(`http://127.0.0.1:${gw.port}/echo/x`, { headers: { host, 'x-api-key': k.key } });
        await res.body.dump();
        return res.statusCode;
      };
      expect(await call()).toBe(200);

      const proc = redisProc;
      if (fault === 'killed') {
        const exited = new Promise<void>((r) => proc.once('exit', () => r()));
        proc.kill('SIGKILL');
        await exited;
      } else {
        // A Redis that stops answering but keeps its connections open: every command written
        // to it waits for a reply that never comes.
        proc.kill('SIGSTOP');
      }
      // Still serving on cached configuration, keys and the local limiter.
      await waitFor(async () => (await call()) === 200, { timeoutMs: 10_000, what: 'a call served with Redis gone' });

      const t0 = performance.now();
      const code = await gw.stop('SIGTERM');
      const tookMs = performance.now() - t0;
      expect(code).toBe(0);
      // Nothing is in flight, so the drain is immediate; before the fix a QUIT parked in a
      // connection's queue held the process for a minute and more.
      expect(tookMs).toBeLessThan(15_000);
      if (fault === 'frozen') proc.kill('SIGKILL');
      await upstream.close();
    }, 150_000);
  }

  it('cluster workers sharing one GATEWAY_INSTANCE_ID each lock a spool file of their own and none restarts', async () => {
    const redis = testRedis();
    const ks = createKeyspace(uniquePrefix('life'));
    const upstream = await startUpstream();
    const api = makeApi(upstream.url);
    const plan = makePlan([api.id]);
    const snap = makeSnapshot([api], [plan]);
    await publishSnapshot(redis, ks, snap);
    const spoolDir = mkdtempSync(path.join(tmpdir(), 'tg-life-cl-'));
    const gw = await spawnGateway(
      {
        REDIS_URL: testEnv().redisUrl,
        REDIS_PREFIX: ks.prefix,
        GATEWAY_WORKERS: '2',
        GATEWAY_INSTANCE_ID: 'pod-a',
        GATEWAY_SPOOL_DIR: spoolDir,
      },
      // Each worker compiles the sources with tsx on start: slow on a busy machine.
      { startTimeoutMs: 90_000 },
    );
    started.push(gw);
    try {
      await waitFor(async () => (await request(`http://127.0.0.1:${gw.adminPort}/readyz`)).statusCode === 200, {
        timeoutMs: 20_000,
        what: 'both workers ready',
      });
      const locks = readdirSync(spoolDir)
        .filter((f) => f.endsWith('.lock'))
        .sort();
      expect(locks).toEqual([`${spoolFileName('pod-a-0')}.lock`, `${spoolFileName('pod-a-1')}.lock`]);
      expect(gw.logs.filter((l) => l.includes('worker died'))).toEqual([]);
      expect(gw.logs.filter((l) => l.includes('is in use by process'))).toEqual([]);
    } finally {
      expect(await gw.stop('SIGTERM')).toBe(0);
      await upstream.close();
      await redis.quit();
    }
  }, 150_000);
});

describe('gateway drain', () => {
  it('serves a request that arrives on a kept-alive connection while it drains, instead of answering 503', async () => {
    const redis = testRedis();
    const ks = createKeyspace(uniquePrefix('drain'));
    let release: (() => void) | null = null;
    const upstream = await startUpstream((req, res) => {
      if (req.url?.includes('slow')) {
        release = () => res.end('slow done');
        return;
      }
      res.end('fast done');
    });
    const api = makeApi(upstream.url);
    const plan = makePlan([api.id]);
    const snap = makeSnapshot([api], [plan]);
    await publishSnapshot(redis, ks, snap);
    const k = await issueKey(redis, ks, snap.tenantId, plan);
    const gw = await createGateway(testGatewayConfig(ks.prefix));
    const { port } = await gw.listen();
    // One connection, two requests pipelined on it: the second is read while the first is in flight.
    const client = new Client(`http://127.0.0.1:${port}`, { pipelining: 2 });
    const headers = { host: `${snap.tenantSlug}.localhost`, 'x-api-key': k.key };
    try {
      const first = client.request({ method: 'GET', path: '/echo/slow', headers });
      const second = client.request({ method: 'GET', path: '/echo/fast', headers });
      await waitFor(() => release !== null, { what: 'the slow request at the upstream' });
      // The server starts closing (as the drain does) while the first request is in flight; the
      // second, already on the connection, is read after that. Fastify alone, without the drain's
      // periodic idle sweep, so nothing else decides the outcome.
      const closing = gw.apps[0]!.close();
      release!();
      const [a, b] = await Promise.all([first, second]);
      expect([a.statusCode, await a.body.text()]).toEqual([200, 'slow done']);
      expect([b.statusCode, await b.body.text()]).toEqual([200, 'fast done']);
      await closing;
      await gw.shutdown();
    } finally {
      await client.close().catch(() => undefined);
      await upstream.close();
      await redis.quit();
    }
  });
});
