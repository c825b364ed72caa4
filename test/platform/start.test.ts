// `npm start` from nothing, as a new user runs it: no DATABASE_URL/REDIS_URL, so it makes its
// own PostgreSQL and Redis under a data dir, migrates, seeds, starts the apps, prints the
// banner, and on Ctrl-C stops everything and exits 0; a second run reuses the same data.
// The console is left out (TOLLGATE_APPS): `next build` alone would take minutes here; it is
// started the same way as the others.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, waitFor } from '../harness';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const APPS = ['upstream', 'worker', 'gateway'];

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

type Run = { child: ChildProcess; output: () => string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> };

function startPlatform(env: NodeJS.ProcessEnv): Run {
  // `npm start` is exactly this command (checked below); spawning node directly lets the test
  // see the script's own exit status instead of npm's report of the signal.
  const child = spawn(process.execPath, ['scripts/start.mjs'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => out, exited };
}

async function waitForBanner(run: Run, timeoutMs: number) {
  // An exit before the banner fails at once instead of after the whole timeout.
  const exitedFirst = run.exited.then(() => {
    throw new Error(`npm start exited before it was ready:\n${run.output().slice(-4000)}`);
  });
  exitedFirst.catch(() => undefined); // only raced below: its rejection after the banner is expected
  const banner = waitFor(() => run.output().includes('Tollgate is running'), {
    timeoutMs,
    intervalMs: 100,
    what: 'the start banner',
  }).catch((err: Error) => {
    throw new Error(`${err.message}\n--- output ---\n${run.output().slice(-4000)}`);
  });
  banner.catch(() => undefined); // a late timeout after an early exit is already reported
  await Promise.race([banner, exitedFirst]);
}

/** GET through the gateway as the banner's curl line does, without relying on *.localhost DNS. */
function getViaGateway(port: number, url: string, apiKey: string): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: '127.0.0.1', port, path: u.pathname + u.search, headers: { host: u.host, 'x-api-key': apiKey } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
  });
}

/** The supervised process running in `appDir` (a direct child of the start script), via /proc. */
function childIn(parentPid: number, appDir: string): number | null {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parentPid && readlinkSync(`/proc/${entry}/cwd`) === appDir) return Number(entry);
    } catch {
      // the process ended while we looked
    }
  }
  return null;
}

async function stopWithCtrlC(run: Run) {
  run.child.kill('SIGINT');
  const res = await run.exited;
  expect(res, run.output().slice(-3000)).toEqual({ code: 0, signal: null });
  expect(run.output()).toContain('stopped cleanly');
}

describe('npm start', () => {
  // A private directory, as a clone under /root is: as root, PostgreSQL runs as the postgres
  // user, which cannot enter it, so its cluster must go somewhere that user can reach.
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'tg-start-'));
  chmodSync(tmp, 0o700);
  const asRoot = process.getuid?.() === 0;
  const fallback = mkdtempSync(path.join(os.tmpdir(), 'tg-start-pg-'));
  chmodSync(fallback, 0o755);
  const runs: Run[] = [];
  let env: NodeJS.ProcessEnv;
  const ports: Record<string, number> = {};
  let demoKey = '';

  afterAll(async () => {
    for (const run of runs) {
      if (run.child.exitCode === null && run.child.signalCode === null) {
        run.child.kill('SIGINT');
        await Promise.race([run.exited, new Promise((r) => setTimeout(r, 30_000))]);
      }
    }
    rmSync(tmp, { recursive: true, force: true });
    rmSync(fallback, { recursive: true, force: true });
  });

  it('is the start script', () => {
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).toBe('node scripts/start.mjs');
  });

  it('brings up PostgreSQL, Redis, the migrated database and the apps from nothing in a 0700 directory, restarts a crashed app, and stops cleanly on Ctrl-C', async () => {
    for (const name of ['pg', 'redis', 'gateway', 'gatewayAdmin', 'worker', 'upstream', 'console']) ports[name] = await freePort();
    env = { ...process.env };
    for (const k of Object.keys(env)) if (k === 'DATABASE_URL' || k === 'REDIS_URL' || k.startsWith('TG_TEST_')) delete env[k];
    Object.assign(env, {
      TOLLGATE_DATA_DIR: path.join(tmp, 'data'),
      TOLLGATE_ENV_FILE: path.join(tmp, 'no.env'), // a developer's own .env must not steer the test
      TOLLGATE_PG_FALLBACK_DIR: fallback,
      TOLLGATE_PG_PORT: String(ports.pg),
      TOLLGATE_REDIS_PORT: String(ports.redis),
      TOLLGATE_APPS: APPS.join(','),
      GATEWAY_PORT: String(ports.gateway),
      GATEWAY_ADMIN_PORT: String(ports.gatewayAdmin),
      GATEWAY_WORKERS: '1',
      WORKER_PORT: String(ports.worker),
      DEMO_UPSTREAM_PORT: String(ports.upstream),
      CONSOLE_PORT: String(ports.console),
      NO_COLOR: '1',
      LOG_LEVEL: 'warn',
    });
    const run = startPlatform(env);
    runs.push(run);
    await waitForBanner(run, 180_000);
    const out = run.output();
    expect(out).toContain('creating a PostgreSQL cluster');
    if (asRoot) {
      // The 0700 directory did not stop it: the cluster moved, and the log said where.
      expect(out).toMatch(/PostgreSQL runs as \w+, which cannot enter .*: its cluster lives in .*tg-start-pg-/);
      expect(readdirSync(fallback).some((d) => d.startsWith('tollgate-'))).toBe(true);
    }
    expect(out).toMatch(/\[migrate\]\s+applied: /);

    const db = new pg.Client({ connectionString: `postgresql://postgres@127.0.0.1:${ports.pg}/tollgate` });
    await db.connect();
    try {
      const { rows } = await db.query<{ n: number }>('select count(*)::int as n from _prisma_migrations where finished_at is not null');
      expect(rows[0]!.n).toBeGreaterThan(0);
    } finally {
      await db.end();
    }
    const redis = new Redis(ports.redis!, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    expect(await redis.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
    expect(await redis.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
    await redis.quit();

    // Every app came up, and the banner's own curl line gets the demo upstream's echo.
    for (const app of APPS) expect(out, app).toMatch(new RegExp(`\\[start\\]\\s+${app}\\s+http://`));
    const curl = /curl -H "X-API-Key: (tg_\w+)" (http:\/\/\S+)/.exec(out);
    expect(curl, 'the banner shows a curl line for the demo API').not.toBeNull();
    const res = await getViaGateway(ports.gateway!, curl![2]!, curl![1]!);
    expect(res.status, res.body).toBe(200);
    demoKey = curl![1]!;

    // A crashed app is restarted by the supervisor, and serves again.
    const upstreamPid = childIn(run.child.pid!, path.join(root, 'apps/demo-upstream'));
    expect(upstreamPid, 'the demo upstream runs under the start script').not.toBeNull();
    process.kill(upstreamPid!, 'SIGKILL');
    await waitFor(() => run.output().includes('upstream crashed; restarting it'), { timeoutMs: 10_000, what: 'the restart notice' });
    await waitFor(async () => (await getViaGateway(ports.gateway!, curl![2]!, demoKey)).status === 200, {
      timeoutMs: 30_000,
      intervalMs: 250,
      what: 'the demo API through the restarted upstream',
    });
    // The echo shows the identity the gateway added, so the request really went through it.
    const echo = JSON.parse(res.body) as { tollgate: Record<string, string> };
    expect(echo.tollgate.tenant).toBeTruthy();
    expect(echo.tollgate['key-id']).toBeTruthy();

    await stopWithCtrlC(run);
    // Nothing is left behind holding a port.
    for (const name of ['pg', 'redis', 'gateway', 'worker', 'upstream']) expect(await portIsFree(ports[name]!), name).toBe(true);
  }, 240_000);

  it('reuses the data on a second run without error', async () => {
    expect(env, 'the first run set the scene').toBeDefined();
    const run = startPlatform(env);
    runs.push(run);
    await waitForBanner(run, 120_000);
    const out = run.output();
    expect(out).toContain('reusing the PostgreSQL cluster');
    expect(out).toContain('reusing the Redis data');
    expect(out).toMatch(/\[migrate\]\s+database is up to date/);
    expect(out).not.toMatch(/seed failed|initdb failed/);
    // The same demo tenant and key as before, still accepted by the gateway.
    expect(demoKey).not.toBe('');
    const curl = /curl -H "X-API-Key: (tg_\w+)" (http:\/\/\S+)/.exec(out);
    expect(curl?.[1]).toBe(demoKey);
    expect((await getViaGateway(ports.gateway!, curl![2]!, demoKey)).status).toBe(200);
    await stopWithCtrlC(run);
  }, 180_000);

  it('falls back to embedded PGlite over the wire protocol where PostgreSQL binaries are missing', async () => {
    const pgliteEnv: NodeJS.ProcessEnv = {
      ...env,
      TOLLGATE_PG: 'pglite', // what a machine without initdb/postgres gets
      TOLLGATE_DATA_DIR: path.join(tmp, 'pglite-data'),
      TOLLGATE_PG_PORT: String(await freePort()),
      TOLLGATE_REDIS_PORT: String(await freePort()),
      TOLLGATE_APPS: 'upstream',
    };
    const run = startPlatform(pgliteEnv);
    runs.push(run);
    await waitForBanner(run, 180_000);
    const out = run.output();
    expect(out).toContain('using embedded PGlite');
    expect(out).toMatch(/\[migrate\]\s+applied: /);
    expect(out).toMatch(/Tollgate demo is seeded/);
    await stopWithCtrlC(run);
  }, 240_000);
});
