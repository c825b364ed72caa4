// The gateway boots without Redis (ADR 0029): a real gateway process keeps the last good policy
// snapshots it loaded on disk and serves them when Redis is unreachable at its next boot.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { createKeyspace } from '@tollgate/policy';
import { freePort, testEnv, testRedis, uniquePrefix, waitFor } from '../harness';
import { makeApi, makePlan, makeSnapshot, publishSnapshot, spawnGateway, startUpstream, type GatewayProcess } from './fixtures';
import { LAST_GOOD_FILE } from '../../apps/gateway/src/config/last-good';

async function startPrivateRedis(port: number): Promise<ChildProcess> {
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  await waitFor(() => out.includes('Ready to accept connections'), { timeoutMs: 10_000, what: 'redis-server' });
  return proc;
}

async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await request(url);
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

async function getText(url: string): Promise<string> {
  const res = await request(url);
  return res.body.text();
}

describe('gateway last good configuration on disk', () => {
  const started: GatewayProcess[] = [];
  const redisProcs: ChildProcess[] = [];
  afterAll(async () => {
    for (const g of started) if (g.child.exitCode === null && g.child.signalCode === null) await g.stop('SIGKILL');
    for (const p of redisProcs) if (p.exitCode === null) p.kill('SIGKILL');
  });

  it('boots with Redis unreachable and serves the last good snapshot; loads fresh state when Redis comes back; ignores a corrupt or huge copy', async () => {
    const redis = testRedis();
    const ks = createKeyspace(uniquePrefix('lastgood'));
    const upstream = await startUpstream();
    const api = makeApi(upstream.url, { authMode: 'none' });
    const plan = makePlan([api.id]);
    const snap = makeSnapshot([api], [plan]);
    await publishSnapshot(redis, ks, snap);
    const stateDir = mkdtempSync(path.join(tmpdir(), 'tg-state-'));
    const spoolDir = mkdtempSync(path.join(tmpdir(), 'tg-spool-'));
    const file = path.join(stateDir, LAST_GOOD_FILE);
    const boot = async (redisUrl: string, extra: Record<string, string> = {}) => {
      const gw = await spawnGateway(
        { REDIS_URL: redisUrl, REDIS_PREFIX: ks.prefix, GATEWAY_SPOOL_DIR: spoolDir, GATEWAY_STATE_DIR: stateDir, ...extra },
        { startTimeoutMs: 90_000 },
      );
      started.push(gw);
      return gw;
    };
    const host = `${snap.tenantSlug}.localhost`;
    const call = async (gw: GatewayProcess) => {
      const res = await request(`http://127.0.0.1:${gw.port}/echo/x`, { headers: { host } });
      await res.body.dump();
      return res.statusCode;
    };

    // 1. With Redis: the snapshot is loaded and saved.
    const first = await boot(testEnv().redisUrl);
    expect(await call(first)).toBe(200);
    expect((await getJson(`http://127.0.0.1:${first.adminPort}/readyz`)).body).toMatchObject({ status: 'ready', config: 'redis' });
    await waitFor(() => existsSync(file), { timeoutMs: 10_000, what: 'the last good copy written' });
    expect(await first.stop('SIGTERM')).toBe(0);
    const good = readFileSync(file, 'utf8');

    // 2. Redis unreachable (a closed local port): served from disk, and it says so.
    const closedPort = await freePort();
    const offline = `redis://127.0.0.1:${closedPort}`;
    const second = await boot(offline);
    const before = upstream.requests.length;
    expect(await call(second)).toBe(200);
    expect(upstream.requests.length).toBe(before + 1);
    const ready = await getJson(`http://127.0.0.1:${second.adminPort}/readyz`);
    expect(ready).toMatchObject({ status: 200, body: { status: 'ready', config: 'disk', tenants: 1, version: 1 } });
    const metrics = await getText(`http://127.0.0.1:${second.adminPort}/metrics`);
    expect(metrics).toContain('tollgate_gateway_config_source{source="disk"} 1');
    expect(metrics).toContain('tollgate_gateway_config_source{source="redis"} 0');

    // 3. Redis comes back on that port with a newer snapshot: the gateway loads it as usual.
    redisProcs.push(await startPrivateRedis(closedPort));
    const back = new Redis(offline, { maxRetriesPerRequest: null });
    await publishSnapshot(back, ks, { ...snap, version: 2 });
    await waitFor(async () => (await getJson(`http://127.0.0.1:${second.adminPort}/readyz`)).body.config === 'redis', {
      timeoutMs: 30_000,
      what: 'configuration reloaded from redis',
    });
    expect((await getJson(`http://127.0.0.1:${second.adminPort}/readyz`)).body).toMatchObject({ version: 2 });
    expect(await getText(`http://127.0.0.1:${second.adminPort}/metrics`)).toContain('tollgate_gateway_config_source{source="redis"} 1');
    await back.quit();
    expect(await second.stop('SIGTERM')).toBe(0);
    redisProcs[0]!.kill('SIGKILL');

    // 4. A corrupted copy (one byte changed): ignored with a warning, 503 as before, no crash.
    const otherClosed = `redis://127.0.0.1:${await freePort()}`;
    writeFileSync(file, good.replace('"version":1', '"version":9'));
    const third = await boot(otherClosed);
    expect(await call(third)).toBe(503);
    expect((await getJson(`http://127.0.0.1:${third.adminPort}/readyz`)).status).toBe(503);
    expect(third.logs.some((l) => l.includes('checksum mismatch'))).toBe(true);
    expect(third.child.exitCode).toBeNull();
    expect(await third.stop('SIGTERM')).toBe(0);

    // 5. A copy over GATEWAY_STATE_MAX_BYTES is not even read; garbage is refused the same way.
    writeFileSync(file, good + ' '.repeat(4096));
    const fourth = await boot(otherClosed, { GATEWAY_STATE_MAX_BYTES: String(Buffer.byteLength(good) + 100) });
    expect(await call(fourth)).toBe(503);
    expect(fourth.logs.some((l) => l.includes('too large'))).toBe(true);
    expect(fourth.child.exitCode).toBeNull();
    expect(await fourth.stop('SIGTERM')).toBe(0);

    await upstream.close();
    await redis.quit();
  }, 300_000);
});
