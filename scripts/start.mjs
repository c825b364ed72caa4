#!/usr/bin/env node
// `npm start`: the whole platform with the seeded demo, from nothing. Installs dependencies if
// they are missing, brings up PostgreSQL and Redis under .data/ unless DATABASE_URL/REDIS_URL
// point elsewhere, migrates, seeds, builds what changed, then runs the demo upstream, worker,
// gateway and console with prefixed logs until Ctrl-C stops them all, newest first.
// Node built-ins only until `npm ci` has run: this file must work on a bare clone.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as util from 'node:util';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { APPS, needsBuild, readApp, scriptPath } from './start/apps.mjs';
import { fail, paint, say, warn } from './start/log.mjs';
import { httpStatus, isPortFree, waitUntil } from './start/net.mjs';
import { findPostgresBinaries, startPglite, startSystemPostgres } from './start/postgres.mjs';
import { startLocalRedis } from './start/redis.mjs';
import { Supervisor } from './start/supervisor.mjs';
import { ensureInstalled } from './start/install.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) {
  fail(`Tollgate needs Node.js 20.19 or newer (24 LTS recommended); this is ${process.version}`);
  process.exit(1);
}

// A .env at the root configures `npm start` (see .env.example); what the shell sets wins.
const envFile = path.resolve(root, process.env.TOLLGATE_ENV_FILE || '.env');
if (existsSync(envFile)) {
  let parsed;
  try {
    parsed = util.parseEnv(readFileSync(envFile, 'utf8'));
  } catch (err) {
    fail(`could not read ${envFile}: ${err.message}`);
    process.exit(1);
  }
  for (const [k, v] of Object.entries(parsed)) if (process.env[k] === undefined) process.env[k] = v;
}
const startedAt = Date.now();
const sup = new Supervisor();
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function intFromEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${name} must be a port number (1-65535), got ${JSON.stringify(raw)}`);
  return n;
}

// ---- shutdown -----------------------------------------------------------------------------
let stopRequested = false;
async function shutdown(code) {
  if (stopRequested) return;
  stopRequested = true;
  await sup.stopAll();
  say(code === 0 ? 'stopped cleanly' : 'stopped');
  process.exit(code);
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (stopRequested) {
      warn('second signal: killing everything now');
      sup.killAll();
      process.exit(130);
    }
    say(`${sig === 'SIGINT' ? 'Ctrl-C' : sig}: stopping (press Ctrl-C again to kill)`);
    void shutdown(0);
  });
}
/** PostgreSQL or Redis died under us: nothing can work without them. */
const infraDied = (name) => () => {
  fail(`${name} stopped unexpectedly; stopping everything`);
  void shutdown(1);
};

// ---- steps --------------------------------------------------------------------------------
async function ensureDatabaseUrl(dataDir) {
  if (process.env.DATABASE_URL) {
    say(`using DATABASE_URL (${redactUrl(process.env.DATABASE_URL)})`);
    return process.env.DATABASE_URL;
  }
  const port = intFromEnv('TOLLGATE_PG_PORT', 54329);
  // TOLLGATE_PG=pglite forces the embedded fallback (what a machine without PostgreSQL gets).
  const bins = process.env.TOLLGATE_PG === 'pglite' ? null : findPostgresBinaries();
  const opts = { sup, root, dataDir, port, onExit: infraDied('PostgreSQL') };
  return bins ? startSystemPostgres({ ...opts, bins }) : startPglite(opts);
}

async function ensureRedisUrl(dataDir) {
  if (process.env.REDIS_URL) {
    say(`using REDIS_URL (${redactUrl(process.env.REDIS_URL)})`);
    return process.env.REDIS_URL;
  }
  return startLocalRedis({ sup, root, dataDir, port: intFromEnv('TOLLGATE_REDIS_PORT', 63790), onExit: infraDied('Redis') });
}

/**
 * The console signs sessions with SESSION_SECRET and its server (dist/main.js) runs Next in
 * production mode, which refuses to run without one. A local platform gets a random secret, kept in the data
 * dir so logins survive restarts.
 */
function localSessionSecret(dataDir) {
  if (process.env.SESSION_SECRET) return process.env.SESSION_SECRET;
  const file = path.join(dataDir, 'session-secret');
  if (existsSync(file)) {
    const kept = readFileSync(file, 'utf8').trim();
    if (kept.length >= 32) return kept;
  }
  const secret = randomBytes(32).toString('hex');
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return secret;
}

function redactUrl(url) {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

async function migrateAndSeed(env) {
  // The URL travels in the environment, not argv, where `ps` would show its password.
  const migrated = await sup.run('migrate', process.execPath, ['scripts/db.mjs', 'migrate'], { cwd: root, env });
  if (migrated !== 0) throw new Error(`migrations failed (exit ${migrated})`);
  const demoLines = [];
  if (!existsSync(path.join(root, 'prisma/seed.ts'))) {
    warn('prisma/seed.ts does not exist yet: no demo data');
    return demoLines;
  }
  // The seed prints the demo's logins, key and a curl line; the banner repeats them at the end.
  let inSummary = false;
  const seeded = await sup.run('seed', npm, ['run', '--silent', 'db:seed'], {
    cwd: root,
    env: seedEnv(env),
    onLine: (line) => {
      if (/^Tollgate demo\b/.test(line.trim())) inSummary = true;
      if (inSummary && line.trim()) demoLines.push(line.trimEnd());
    },
  });
  if (seeded !== 0) warn(`the seed failed (exit ${seeded}); the platform runs without demo data`);
  return demoLines;
}

/** The seed reads the same GATEWAY_PUBLIC_URL pattern (with {tenant}) as the console. */
function seedEnv(env) {
  return {
    ...env,
    GATEWAY_PUBLIC_URL: env.GATEWAY_PUBLIC_URL || `http://{tenant}.${env.GATEWAY_BASE_DOMAIN || 'localhost'}:${env.GATEWAY_PORT}`,
    CONSOLE_PUBLIC_URL: env.CONSOLE_PUBLIC_URL || env.CONSOLE_URL,
  };
}

const devMode = process.argv.includes('--dev');
const RESTART_LIMIT = 5;

/**
 * Builds (if needed) and starts one app, and restarts it if it crashes later (with backoff,
 * at most RESTART_LIMIT times in a row). With --dev it runs the app's `dev` script instead
 * (sources, reloads) and builds nothing. Resolves with the app's line for the banner.
 */
async function startApp(app, env, ports) {
  const info = readApp(root, app);
  if (!info) return { app, skipped: `${app.dir} does not exist yet` };
  const script = devMode ? (info.scripts.dev ?? info.scripts.start) : info.scripts.start;
  if (!script) return { app, skipped: `${info.workspace} has no ${devMode ? 'dev or start' : 'start'} script` };
  if (!devMode && info.scripts.build && needsBuild(root, app)) {
    say(`building ${info.workspace}…`);
    const code = await sup.run(app.name, npm, ['run', '--silent', 'build', '-w', info.workspace], { cwd: root, env });
    if (code !== 0) return { app, skipped: `its build failed (exit ${code}); see the [${app.name}] lines above` };
  }
  const port = ports[app.portKey];
  if (!(await isPortFree(port))) return { app, skipped: `port ${port} is taken; set ${PORT_VARS[app.portKey]} to another` };

  let restarts = 0;
  let launchedAt = 0;
  let up = false;
  const launch = () => {
    launchedAt = Date.now();
    // The script itself, exec'd by a shell, so the app gets our signals first-hand (npm would
    // sit in between and report every Ctrl-C as a failure).
    return sup.start(app.name, '/bin/sh', ['-c', `exec ${script}`], {
      cwd: path.join(root, app.dir),
      env: { ...env, PORT: String(port), PATH: scriptPath(root, app.dir) },
      onExit: () => {
        if (!up) return; // a failed start is reported below, not retried
        if (Date.now() - launchedAt > 60_000) restarts = 0; // it ran a while: a fresh crash
        if (restarts >= RESTART_LIMIT) {
          fail(`${app.name} crashed ${RESTART_LIMIT + 1} times in a row; not restarting it (fix it, then Ctrl-C and npm start again)`);
          return;
        }
        const delay = 1000 * 2 ** restarts++;
        warn(`${app.name} crashed; restarting it in ${delay / 1000}s`);
        setTimeout(() => {
          if (!sup.stopping) launch();
        }, delay).unref();
      },
    });
  };
  const svc = launch();
  // Up = answering below 500 (a 404 is a live server; a 500/503 is one that is not ready).
  const url = app.probe(ports);
  let last = 0;
  up = await waitUntil(async () => (last = await httpStatus(url)) > 0 && last < 500, {
    timeoutMs: app.readyTimeoutMs ?? (devMode ? 120_000 : 60_000),
    alive: () => !svc.exited,
  });
  if (!up) {
    const why = svc.exited ? 'it exited during start-up' : last ? `${url} answers ${last}` : `no answer on ${url}`;
    return { app, skipped: `${why}; see its lines above`, running: !svc.exited };
  }
  return { app, port };
}

const PORT_VARS = { upstream: 'DEMO_UPSTREAM_PORT', worker: 'WORKER_PORT', gateway: 'GATEWAY_PORT', console: 'CONSOLE_PORT' };

function printBanner(results, demoLines, dbUrl, redisUrl, ports) {
  const line = paint('grey', '─'.repeat(68));
  const out = [line, paint('bold', `Tollgate is running (ready in ${((Date.now() - startedAt) / 1000).toFixed(1)}s)`)];
  const urls = {
    console: `http://localhost:${ports.console}`,
    gateway: `http://demo.localhost:${ports.gateway}  (health and metrics: http://localhost:${ports.gatewayAdmin}/metrics)`,
    worker: `http://localhost:${ports.worker}/metrics`,
    upstream: `http://localhost:${ports.upstream}`,
  };
  for (const r of results) {
    out.push(
      r.skipped
        ? `  ${r.app.name.padEnd(9)} ${paint('yellow', `not running: ${r.skipped}`)}`
        : `  ${r.app.name.padEnd(9)} ${urls[r.app.name]}`,
    );
  }
  out.push(`  ${'postgres'.padEnd(9)} ${redactUrl(dbUrl)}`, `  ${'redis'.padEnd(9)} ${redactUrl(redisUrl)}`);
  out.push(...demoLines);
  out.push('Ctrl-C stops everything.', line);
  for (const l of out) say(l);
}

// ---- main ---------------------------------------------------------------------------------
async function main() {
  const dataDir = path.resolve(root, process.env.TOLLGATE_DATA_DIR || '.data');
  const ports = {
    console: intFromEnv('CONSOLE_PORT', 3000),
    gateway: intFromEnv('GATEWAY_PORT', 8080),
    worker: intFromEnv('WORKER_PORT', 9090),
    upstream: intFromEnv('DEMO_UPSTREAM_PORT', 4000),
    gatewayAdmin: intFromEnv('GATEWAY_ADMIN_PORT', 9091),
  };
  const wanted = (process.env.TOLLGATE_APPS || APPS.map((a) => a.name).join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = wanted.filter((n) => !APPS.some((a) => a.name === n));
  if (unknown.length)
    throw new Error(`TOLLGATE_APPS names unknown apps: ${unknown.join(', ')} (known: ${APPS.map((a) => a.name).join(', ')})`);

  await ensureInstalled(sup, root);
  mkdirSync(dataDir, { recursive: true, mode: 0o755 });
  const [databaseUrl, redisUrl] = await Promise.all([ensureDatabaseUrl(dataDir), ensureRedisUrl(dataDir)]);

  const env = {
    NEXT_TELEMETRY_DISABLED: '1',
    TURBO_TELEMETRY_DISABLED: '1',
    ...process.env,
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    CONSOLE_PORT: String(ports.console),
    GATEWAY_PORT: String(ports.gateway),
    WORKER_PORT: String(ports.worker),
    GATEWAY_ADMIN_PORT: String(ports.gatewayAdmin),
    GATEWAY_SPOOL_DIR: process.env.GATEWAY_SPOOL_DIR || path.join(dataDir, 'spool'),
    DEMO_UPSTREAM_PORT: String(ports.upstream),
    DEMO_UPSTREAM_URL: process.env.DEMO_UPSTREAM_URL || `http://127.0.0.1:${ports.upstream}`,
    CONSOLE_URL: process.env.CONSOLE_URL || `http://localhost:${ports.console}`,
    TOLLGATE_DATA_DIR: dataDir,
    SESSION_SECRET: localSessionSecret(dataDir),
    // A local demo listens on loopback only, unless told otherwise.
    GATEWAY_HOST: process.env.GATEWAY_HOST || '127.0.0.1',
    GATEWAY_ADMIN_HOST: process.env.GATEWAY_ADMIN_HOST || '127.0.0.1',
    WORKER_HOST: process.env.WORKER_HOST || '127.0.0.1',
    DEMO_UPSTREAM_HOST: process.env.DEMO_UPSTREAM_HOST || '127.0.0.1',
  };
  const demoLines = await migrateAndSeed(env);

  const results = [];
  for (const app of APPS.filter((a) => wanted.includes(a.name))) {
    if (sup.stopping) return;
    const r = await startApp(app, env, ports);
    if (r.skipped) warn(`${app.name}: not running: ${r.skipped}`);
    results.push(r);
  }
  if (sup.stopping) return;
  printBanner(results, demoLines, databaseUrl, redisUrl, ports);
  if (devMode) say('dev mode: apps run from source through their `dev` scripts; nothing was built');
}

main().catch(async (err) => {
  if (stopRequested) return;
  fail(err instanceof Error ? err.message : String(err));
  await shutdown(1);
});
