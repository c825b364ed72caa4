#!/usr/bin/env node
// `npm test`: every suite, on a fresh machine too. Installs dependencies if they are missing,
// finds (or, as root with apt, installs) Chromium for the browser suites and nginx for the
// scale-out suite, uses PostgreSQL and
// Redis where they answer (DATABASE_URL/REDIS_URL, else 127.0.0.1:5432 and :6379) and otherwise
// starts private ones under .data/test for the run, then runs `vitest run` with any arguments
// given (`npm test -- test/gateway`) and stops what it started.
//
// `--at=<ISO instant>` runs the suites under a shifted clock instead (scripts/test/clock-shift.c,
// preloaded into every process of the run, PostgreSQL and Redis included, which are then always private ones): tests
// must not depend on the day they run. `--at=dates` runs at each of DATE_INSTANTS; `--calendar`
// runs only the DATE_SENSITIVE suites (`npm run test:dates` is both).
// Node built-ins only until dependencies are installed: this file must work on a bare clone.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { aptInstall } from './start/apt.mjs';
import { ensureChromium } from './start/chromium.mjs';
import { ensureInstalled } from './start/install.mjs';
import { fail, say } from './start/log.mjs';
import { freeLocalPort, redisPongs } from './start/net.mjs';
import { canQuery, findPostgresBinaries, loadPg, startSystemPostgres } from './start/postgres.mjs';
import { startLocalRedis } from './start/redis.mjs';
import { Supervisor } from './start/supervisor.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The instants the date check runs at: a month's first and last minute, a leap day, and the
 * last second of a year. Each run starts there and lets the clock go on, so a test that spans
 * the boundary meets it too.
 */
const DATE_INSTANTS = ['2027-03-01T00:00:00Z', '2027-01-31T23:59:00Z', '2028-02-29T23:59:00Z', '2026-12-31T23:59:59Z'];

/** The suites whose subject is calendar time: billing periods, ledgers, rollups, usage windows. */
const DATE_SENSITIVE = [
  'packages/billing',
  'packages/ratelimit/src/headers.test.ts',
  'test/worker',
  'test/console/usage.test.ts',
  'test/console/usage-export.test.ts',
  'test/portal',
  'test/publishing/key-record-expiry.test.ts',
];

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) {
  fail(`Tollgate needs Node.js 20.19 or newer (24 LTS recommended); this is ${process.version}`);
  process.exit(1);
}

const sup = new Supervisor();
let vitest = null;
let stopping = false;

async function finish(code) {
  if (stopping) return;
  stopping = true;
  if (sup.services.length) await sup.stopAll();
  process.exit(code);
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (vitest && vitest.exitCode === null) vitest.kill(sig);
    else void finish(130);
  });
}
const infraDied = (name) => () => {
  fail(`${name} stopped during the test run`);
  if (vitest && vitest.exitCode === null) vitest.kill('SIGTERM');
};

/** Where private servers keep their data: in the checkout, or beside it for the clock runs. */
function dataDir(kind) {
  const dir = path.join(process.env.TOLLGATE_DATA_DIR || path.join(root, '.data'), kind);
  mkdirSync(dir, { recursive: true });
  return dir;
}

async function postgresUrl(privateOnly, dir) {
  const given = process.env.DATABASE_URL;
  if (given && !privateOnly) return given;
  const machine = 'postgresql://postgres@127.0.0.1:5432/postgres';
  if (!privateOnly && (await canQuery(loadPg(root), machine).catch(() => false))) return machine;
  let bins = findPostgresBinaries();
  if (!bins) {
    // The test harness makes databases of its own (CREATE DATABASE … TEMPLATE): PGlite can't.
    const why = aptInstall(['postgresql'], say);
    bins = why === null ? findPostgresBinaries() : null;
    if (!bins)
      throw new Error(
        `nothing answers on 127.0.0.1:5432 and no PostgreSQL server binaries were found (${why ?? 'installed, yet not found'}): install PostgreSQL (apt-get install postgresql) or set DATABASE_URL`,
      );
  }
  say(
    privateOnly
      ? 'starting a private PostgreSQL for this run'
      : 'nothing answers on 127.0.0.1:5432: starting a private PostgreSQL for this run',
  );
  const url = await startSystemPostgres({ sup, root, dataDir: dir, port: await freeLocalPort(), bins, onExit: infraDied('PostgreSQL') });
  const u = new URL(url);
  u.pathname = '/postgres';
  return u.toString();
}

async function redisUrl(privateOnly, dir) {
  const given = process.env.REDIS_URL;
  if (given && !privateOnly) return given;
  if (!privateOnly && (await redisPongs(6379))) return 'redis://127.0.0.1:6379';
  say(privateOnly ? 'starting a private Redis for this run' : 'nothing answers on 127.0.0.1:6379: starting a private Redis for this run');
  return startLocalRedis({ sup, root, dataDir: dir, port: await freeLocalPort(), onExit: infraDied('Redis') });
}

/**
 * The clock-shift library (scripts/test/clock-shift.c), compiled once into the data dir; a C
 * compiler comes from Debian's gcc when missing and this runs as root.
 */
function clockShiftLibrary() {
  const src = path.join(root, 'scripts/test/clock-shift.c');
  const lib = path.join(dataDir('bin'), 'clock-shift.so');
  if (existsSync(lib) && statSync(lib).mtimeMs >= statSync(src).mtimeMs) return lib;
  const hasCc = (process.env.PATH ?? '').split(path.delimiter).some((d) => d && existsSync(path.join(d, 'cc')));
  if (!hasCc) {
    const why = aptInstall(['gcc', 'libc6-dev'], say);
    if (why !== null) throw new Error(`a shifted clock needs a C compiler to build scripts/test/clock-shift.c (${why}): install gcc`);
  }
  const built = spawnSync('cc', ['-shared', '-fPIC', '-O2', '-o', lib, src, '-ldl'], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (built.status !== 0) throw new Error(`compiling scripts/test/clock-shift.c failed (exit ${built.status})`);
  return lib;
}

/** Runs vitest once; resolves with its exit code. */
function runVitest(args, env) {
  return new Promise((resolve) => {
    vitest = spawn(process.execPath, [path.join(root, 'node_modules/vitest/vitest.mjs'), 'run', ...args], {
      cwd: root,
      env,
      stdio: 'inherit',
    });
    vitest.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

/** One run of the suites (at `at`, when given), with its own services where needed. */
async function runOnce(args, at) {
  const env = { ...process.env };
  const privateOnly = Boolean(at);
  const chromium = ensureChromium(say);
  if ('error' in chromium) throw new Error(chromium.error);
  env.CHROMIUM_PATH = chromium.path;
  // The scale-out suite puts Debian's nginx in front of three gateways, as compose does.
  if (!existsSync('/usr/sbin/nginx')) {
    const why = aptInstall(['nginx-light'], say);
    if (why !== null) throw new Error(`the scale-out suite needs nginx at /usr/sbin/nginx (${why}): install Debian's nginx-light`);
  }
  if (at) {
    // Every process of the run, the servers included, shares one shifted wall clock; monotonic
    // clocks (timers, performance.now) stay real.
    const shift = { LD_PRELOAD: clockShiftLibrary(), TG_CLOCK_OFFSET_MS: String(Date.parse(at) - Date.now()) };
    Object.assign(process.env, shift);
    Object.assign(env, shift);
    say(`clock shifted to ${at} (TG_CLOCK_OFFSET_MS=${shift.TG_CLOCK_OFFSET_MS})`);
  }
  const dir = dataDir(at ? 'test-clock' : 'test');
  if (at) {
    // A cluster from another instant would carry that instant's WAL and stats: start afresh.
    rmSync(path.join(dir, 'postgres'), { recursive: true, force: true });
    rmSync(path.join(dir, 'redis'), { recursive: true, force: true });
  }
  const [databaseUrl, redis] = await Promise.all([postgresUrl(privateOnly, dir), redisUrl(privateOnly, dir)]);
  env.DATABASE_URL = databaseUrl;
  env.REDIS_URL = redis;
  const code = await runVitest(args, env);
  await sup.stopAll();
  sup.services = [];
  sup.stopping = false;
  if (at) for (const k of ['LD_PRELOAD', 'TG_CLOCK_OFFSET_MS']) delete process.env[k];
  return code;
}

async function main() {
  const argv = process.argv.slice(2);
  const atArg = argv.find((a) => a.startsWith('--at='));
  const calendar = argv.includes('--calendar');
  const args = [...argv.filter((a) => a !== atArg && a !== '--calendar'), ...(calendar ? DATE_SENSITIVE : [])];
  await ensureInstalled(sup, root);
  if (!atArg) return runOnce(args);
  const at = atArg.slice('--at='.length);
  const instants = at === 'dates' ? DATE_INSTANTS : [at];
  for (const i of instants) {
    if (Number.isNaN(Date.parse(i)))
      throw new Error(`--at needs an ISO instant like 2026-12-31T23:59:59Z, or "dates"; got ${JSON.stringify(i)}`);
  }
  let worst = 0;
  for (const i of instants) {
    const code = await runOnce(args, i);
    say(`suites at ${i}: ${code === 0 ? 'passed' : `failed (exit ${code})`}`);
    worst = worst || code;
  }
  return worst;
}

main().then(
  (code) => finish(code),
  async (err) => {
    fail(err instanceof Error ? err.message : String(err));
    await finish(1);
  },
);
