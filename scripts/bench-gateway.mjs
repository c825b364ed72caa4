#!/usr/bin/env node
// Gateway benchmark (a script, not a test): `npm run bench:gateway`.
//
// Closed loop (wrk, three repeats, medians) with the proxy under test pinned to core 0 and the
// load generator + upstream on the other core(s):
//   (a) the upstream directly   (b) nginx keep-alive reverse proxy   (c) bare Fastify + undici proxy
//   (d) Tollgate: key auth + rate limit + quota + usage events, GATEWAY_WORKERS=1, default settings
//   (dp) the same with limit reservations off: every call decided in Redis
//   (t1/t2) the (d) gateway on its TLS port, HTTP/1.1 against HTTP/2 (ALPN h2), one Node client (bench-gateway-tls.mjs)
//   (de) the same process and key on a second API with CORS (an allowed Origin on every call) and
//        IP rules (a deny list of 200 IPv4 and IPv6 CIDRs) on: (de) − (d) is what they cost (ADR 0025)
//   (dt) the same with OpenTelemetry on at 1% sampling (parentbased_traceidratio 0.01, OTLP to a
//        sink on the load core), to state tracing's cost per request (ADR 0027)
// Then open loop at a fixed offered rate (default 2,000 req/s), latency measured from each
// request's intended send time (no coordinated omission): p50/p99/p99.9 of (a), (b), (c), (d) (and (dp)).
//
// Env: BENCH_DURATION (s, default 8; 0 skips the closed-loop runs after the warm-up), BENCH_REPEATS (3), BENCH_CONNECTIONS (64), BENCH_RATE (2000),
// BENCH_OPEN_DURATION (s, 10; 0 skips the open loop), BENCH_ONLY (comma list of a,b,c,d,t; only the listed ones run; t = the TLS rows, which need d), BENCH_ACCESS_LOG=1 to also run
// (d) with access logs on, BENCH_PROFILE=1 to write a CPU profile of (d) to bench-results/,
// BENCH_BASELINE=<bundle.js> to also run (d0) from another gateway bundle, interleaved with (d)
// (BENCH_BASELINE_NODE_ARGS: extra node flags for d0 only, after the start script's own, to compare
// runtime flags on one bundle, e.g. BENCH_BASELINE=apps/gateway/dist/main.js BENCH_BASELINE_NODE_ARGS=--no-single-threaded-gc),
// BENCH_GATEWAY_NODE_ARGS: extra node flags for (d) and (dp), after the start script's own, e.g. --trace-gc (BENCH_DEBUG=1 prints its output and the private
// Redis's latency events and slow log),
// BENCH_EDGE=0 to skip (de), BENCH_PER_CALL=0 to skip (dp), (d) with limit reservations off (GATEWAY_LIMIT_RESERVATIONS=false, ADR 0013),
// BENCH_TRACING=0 to skip (dt), BENCH_TRACING_RATIO (0.01) its sampling ratio,
// BENCH_BASELINE_REF=<git ref, e.g. main> to build that commit's gateway bundle (a detached worktree
// of its own, its own workspace packages) and run it as (d0), interleaved with (d): tracing off vs that commit,
// BENCH_OPEN_PACER=spin for the old busy-polling open-loop client, BENCH_VERBOSE=1 for every open-loop run,
// BENCH_SLOW_DUMP=<path prefix>: each open-loop client writes its requests slower than BENCH_SLOW_MS (default 5) ms (intended send
// time on the monotonic clock, ms; latency, ms) to <prefix>.<pid>, to line them up with a process's own events.
// BENCH_REDIS=shared to use the Redis at REDIS_URL (default 127.0.0.1:6379) instead of a private
// redis-server pinned to the load core(s).
// Needs: wrk, nginx (Debian nginx-light), taskset, redis-server (or BENCH_REDIS=shared).
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { Worker } from 'node:worker_threads';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, readdirSync, renameSync, readFileSync, symlinkSync, existsSync } from 'node:fs';
import { tmpdir, availableParallelism, cpus } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash, randomBytes } from 'node:crypto';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const self = fileURLToPath(import.meta.url);
const args = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=')));

const BODY = JSON.stringify({ ok: true, message: 'hello from upstream', n: 42 });

// ---------------------------------------------------------------- open-loop client
async function openLoop(a) {
  const { Pool } = await import('undici');
  const rate = Number(a.rate);
  const durationMs = Number(a.duration) * 1000;
  const warmupMs = 1000;
  const headers = JSON.parse(a.headers || '{}');
  const url = new URL(a.url);
  const pool = new Pool(url.origin, { connections: 256, pipelining: 1 });
  const samples = [];
  const slow = process.env.BENCH_SLOW_DUMP ? [] : null;
  const slowMs = Number(process.env.BENCH_SLOW_MS || 5);
  let errors = 0;
  let sent = 0;
  let done = 0;
  const intervalNs = 1e9 / rate;
  // Pre-warm in a closed loop (JIT, a few connections) before the schedule starts: on a slow or
  // busy host the first requests (connect + compile) took ~200 ms, and the backlog they left at
  // 2,000 req/s could outlast the 1 s warm-up and land in the measured window as p99s of 200 ms.
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let i = 0; i < 100; i++) {
        const res = await pool.request({ method: 'GET', path: url.pathname + url.search, headers });
        await res.body.dump();
      }
    }),
  );
  const start = process.hrtime.bigint() + BigInt(warmupMs) * 1_000_000n;
  const total = Math.floor((rate * (durationMs + warmupMs)) / 1000);
  const warmupCount = Math.floor((rate * warmupMs) / 1000);
  // Warm-up requests start "now" and are not recorded.
  const t0 = process.hrtime.bigint();
  const intended = (i) =>
    i < warmupCount ? t0 + BigInt(Math.floor(i * (1e9 / rate))) : start + BigInt(Math.floor((i - warmupCount) * intervalNs));
  const cpu0 = process.cpuUsage();
  await new Promise((resolve) => {
    // A bare dispatch handler rather than pool.request(): the client's own CPU per request (its
    // promise, body stream and dump) halves, so it saturates the load core far later.
    const path = url.pathname + url.search;
    const fire = (i) => {
      const at = intended(i);
      let status = 0;
      const end = (ok) => {
        if (!ok || status !== 200) errors++;
        const lat = Number(process.hrtime.bigint() - at) / 1e6;
        if (i >= warmupCount) {
          samples.push(lat);
          if (slow && lat > slowMs) slow.push([Number(at) / 1e6, lat]);
        }
        if (++done === total) resolve();
      };
      pool.dispatch(
        { method: 'GET', path, headers },
        {
          onConnect() {},
          onHeaders(code) {
            if (code >= 200) status = code;
            return true;
          },
          onData() {
            return true;
          },
          onComplete() {
            end(true);
          },
          onError() {
            end(false);
          },
        },
      );
    };
    if (a.pacer === 'spin') {
      // Busy-polls the clock: precise sends, but it keeps the load core 100% busy, so the upstream
      // and Redis (on that core) wait for the scheduler; kept to compare against the default.
      const tick = () => {
        const now = process.hrtime.bigint();
        while (sent < total && intended(sent) <= now) fire(sent++);
        if (sent < total) setImmediate(tick);
      };
      tick();
      return;
    }
    // Default: a pacing thread sleeps on a futex (sub-millisecond timeouts, unlike timers) until each
    // intended send time and wakes this thread, which sends. Wake-up delays count in the latency
    // (it runs from the intended time), the same for every scenario, and the core stays free for
    // the upstream and Redis between requests.
    const pacer = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const cell = new Int32Array(new SharedArrayBuffer(4));
       const { t0, start, rate, total, warmupCount } = workerData;
       const intended = (i) => (i < warmupCount ? t0 + BigInt(Math.floor(i * (1e9 / rate))) : start + BigInt(Math.floor((i - warmupCount) * (1e9 / rate))));
       let i = 0;
       while (i < total) {
         const waitNs = intended(i) - process.hrtime.bigint();
         if (waitNs > 0n) Atomics.wait(cell, 0, 0, Number(waitNs) / 1e6);
         const now = process.hrtime.bigint();
         let upTo = i;
         while (upTo < total && intended(upTo) <= now) upTo++;
         if (upTo > i) { parentPort.postMessage(upTo); i = upTo; }
       }`,
      { eval: true, workerData: { t0, start, rate, total, warmupCount } },
    );
    pacer.on('message', (upTo) => {
      while (sent < upTo) fire(sent++);
    });
  });
  const cpu = process.cpuUsage(cpu0);
  if (slow) writeFileSync(`${process.env.BENCH_SLOW_DUMP}.${process.pid}`, JSON.stringify({ url: a.url, slow }));
  samples.sort((x, y) => x - y);
  const q = (p) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))];
  process.stdout.write(
    JSON.stringify({
      n: samples.length,
      errors,
      p50: q(0.5),
      p99: q(0.99),
      p999: q(0.999),
      max: samples.at(-1),
      clientCpuMs: Math.round((cpu.user + cpu.system) / 1000),
    }) + '\n',
  );
  await pool.close();
  process.exit(0);
}

// ---------------------------------------------------------------- orchestration
function which(bin) {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).stdout.trim() || null;
}

function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const procs = [];
function startProc(cmd, argv, { cpu, env, ready, ipc } = {}) {
  const full = cpu !== undefined ? ['taskset', ['-c', String(cpu), cmd, ...argv]] : [cmd, argv];
  const child = spawn(full[0], full[1], {
    env: { ...process.env, ...env },
    stdio: ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
  procs.push(child);
  let out = '';
  child.output = () => out;
  child.stdout.on('data', (c) => (out += c));
  child.stderr.on('data', (c) => (out += c));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${cmd} did not become ready:\n${out}`)), 30_000);
    const ok = () => {
      clearTimeout(timer);
      resolve(child);
    };
    if (!ipc && !ready) return ok();
    if (ipc) child.on('message', (m) => m === 'ready' && ok());
    if (ready) {
      const check = setInterval(() => {
        if (ready(out)) {
          clearInterval(check);
          ok();
        }
      }, 50);
    }
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0 && code !== null) reject(new Error(`${cmd} exited ${code}:\n${out.slice(-3000)}`));
    });
  });
}

async function waitHttp(url, headers = {}) {
  const { request } = await import('undici');
  for (let i = 0; i < 200; i++) {
    try {
      const res = await request(url, { headers });
      await res.body.dump();
      if (res.statusCode === 200) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} never answered 200`);
}

function runWrk(url, headers, { duration, connections, cpu }) {
  const argv = ['-t1', `-c${connections}`, `-d${duration}s`, '--latency'];
  for (const [k, v] of Object.entries(headers)) argv.push('-H', `${k}: ${v}`);
  argv.push(url);
  const out = execFileSync('taskset', ['-c', String(cpu), 'wrk', ...argv], { encoding: 'utf8' });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
  const lat = (label) => {
    const m = new RegExp(`\\s${label}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    if (!m) return null;
    const v = Number(m[1]);
    return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
  };
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const errors = /Socket errors: (.*)/.exec(out)?.[1] ?? null;
  return { rps, p50: lat('50'), p99: lat('99'), non2xx, errors };
}

/** utime+stime (clock ticks) of a process and its direct children, from /proc. */
function cpuTicks(pid) {
  if (!pid) return 0;
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(fields[1]);
    if (Number(entry) === pid || ppid === pid) total += Number(fields[11]) + Number(fields[12]);
  }
  return total;
}
const TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100);

/**
 * BENCH_BASELINE_REF: that commit's gateway, bundled as production runs it, from a detached
 * worktree whose node_modules links every installed package except the workspace ones, which
 * point at the worktree's own packages (so the baseline is that commit's code throughout).
 */
function buildBaselineBundle(ref, work) {
  const dir = path.join(work, 'baseline');
  execFileSync('git', ['-C', root, 'worktree', 'add', '--detach', dir, ref], { stdio: 'ignore' });
  process.on('exit', () => {
    spawnSync('git', ['-C', root, 'worktree', 'remove', '--force', dir]);
    spawnSync('git', ['-C', root, 'worktree', 'prune']);
  });
  const modules = path.join(dir, 'node_modules');
  mkdirSync(path.join(modules, '@tollgate'), { recursive: true });
  for (const name of readdirSync(path.join(root, 'node_modules'))) {
    if (name !== '@tollgate') symlinkSync(path.join(root, 'node_modules', name), path.join(modules, name));
  }
  for (const group of ['packages', 'apps']) {
    for (const pkg of readdirSync(path.join(dir, group))) {
      const manifest = path.join(dir, group, pkg, 'package.json');
      if (!existsSync(manifest)) continue;
      const name = JSON.parse(readFileSync(manifest, 'utf8')).name;
      if (name?.startsWith('@tollgate/')) symlinkSync(path.join(dir, group, pkg), path.join(modules, name));
    }
  }
  execFileSync(process.execPath, [path.join(dir, 'scripts/bundle.mjs'), 'src/main.ts'], {
    cwd: path.join(dir, 'apps/gateway'),
    stdio: 'inherit',
  });
  const rev = execFileSync('git', ['-C', dir, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  console.log(`baseline (d0): ${ref} at ${rev}, bundled from its own worktree\n`);
  return path.join(dir, 'apps/gateway/dist/main.js');
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

async function main() {
  for (const bin of ['wrk', 'taskset', 'nginx']) {
    if (!which(bin)) {
      console.error(`bench-gateway: ${bin} not found (Debian: apt-get install -y wrk nginx-light util-linux)`);
      process.exit(1);
    }
  }
  const ncpu = availableParallelism();
  const proxyCpu = 0;
  const loadCpu = ncpu > 1 ? `1-${ncpu - 1}` : '0';
  const duration = Number(process.env.BENCH_DURATION ?? 8);
  const repeats = Number(process.env.BENCH_REPEATS ?? 3);
  const connections = Number(process.env.BENCH_CONNECTIONS ?? 64);
  const rate = Number(process.env.BENCH_RATE ?? 2000);
  const openDuration = Number(process.env.BENCH_OPEN_DURATION ?? 10);
  const only = new Set((process.env.BENCH_ONLY ?? 'a,b,c,d,t').split(','));
  let redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const prefix = `tgbench_${randomBytes(3).toString('hex')}`;
  const work = mkdtempSync(path.join(tmpdir(), 'tg-bench-'));

  console.log(`machine: ${ncpu} cores (${cpus()[0]?.model ?? 'unknown'}), node ${process.version}`);
  console.log(`pinning: proxy under test on cpu ${proxyCpu}; wrk + upstream on cpu ${loadCpu}`);
  console.log(
    `closed loop: wrk -t1 -c${connections} -d${duration}s, ${repeats} repeats, medians; open loop: ${rate} req/s for ${openDuration}s\n`,
  );

  // Bundle the gateway as production runs it.
  execFileSync(process.execPath, [path.join(root, 'scripts/bundle.mjs'), 'src/main.ts'], {
    cwd: path.join(root, 'apps/gateway'),
    stdio: 'inherit',
  });

  // Redis belongs with the rest of the platform, off the gateway's core: a private redis-server
  // pinned beside the load generator and upstream (an unpinned shared one wanders onto the
  // proxy's core and takes its time). BENCH_REDIS=shared uses REDIS_URL as it is.
  let redisWhere = `shared at ${redisUrl}, not pinned`;
  if (process.env.BENCH_REDIS !== 'shared' && which('redis-server')) {
    const redisPort = await freePort();
    await startProc(
      'redis-server',
      [
        '--port',
        String(redisPort),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        work,
        '--latency-monitor-threshold',
        '2',
        '--slowlog-log-slower-than',
        '1000',
      ],
      { cpu: loadCpu },
    );
    redisUrl = `redis://127.0.0.1:${redisPort}`;
    redisWhere = `private redis-server on cpu ${loadCpu}`;
  }
  const { Redis } = await import('ioredis');
  const redis = new Redis(redisUrl, { retryStrategy: (n) => (n > 50 ? null : 100) });
  await redis.ping();
  console.log(`redis: ${redisWhere}\n`);
  // Nothing consumes the gateways' usage batches here (no worker): left alone they piled up in
  // Redis, ~200 KB a batch, a gigabyte or more over a full run, on the load core's Redis. They
  // are dropped between runs (not during one, where it would be load of its own), and the peak
  // memory is printed at the end.
  const { Queue } = await import('bullmq');
  const usageQueue = new Queue('usage', { connection: redis, prefix: `${prefix}:bull` });
  let usageDropped = 0;
  const dropUsage = async () => {
    usageDropped += await usageQueue.getWaitingCount();
    await usageQueue.drain();
  };
  const upPort = await freePort();
  await startProc(process.execPath, [self, '--role=upstream', `--port=${upPort}`], { cpu: loadCpu, ipc: true });
  const upstream = `http://127.0.0.1:${upPort}`;

  const targets = {};
  if (only.has('a')) targets.a = { url: `${upstream}/echo/hello`, headers: {} };

  if (only.has('b')) {
    const ngPort = await freePort();
    const conf = path.join(work, 'nginx.conf');
    mkdirSync(path.join(work, 'nginx-tmp'), { recursive: true });
    writeFileSync(
      conf,
      `worker_processes 1;
daemon off;
pid ${work}/nginx.pid;
error_log ${work}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${work}/nginx-tmp;
  proxy_temp_path ${work}/nginx-tmp;
  fastcgi_temp_path ${work}/nginx-tmp;
  uwsgi_temp_path ${work}/nginx-tmp;
  scgi_temp_path ${work}/nginx-tmp;
  upstream up { server 127.0.0.1:${upPort}; keepalive 128; }
  server {
    listen 127.0.0.1:${ngPort};
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`,
    );
    const ng = await startProc('nginx', ['-c', conf, '-p', work], { cpu: proxyCpu });
    await waitHttp(`http://127.0.0.1:${ngPort}/echo/hello`);
    targets.b = { url: `http://127.0.0.1:${ngPort}/echo/hello`, headers: {}, pid: ng.pid };
  }

  // Every Node proxy shares the measured core with the others, idle between its own runs. V8's
  // memory reducer starts a full GC 8 s after a process's allocation rate drops, which is inside
  // the next scenario's 12 s run on the same core: (d) could pay for (c)'s clean-up and (dp) for
  // (d)'s. Off for every Node proxy here; under load it never runs, so measured runs are
  // otherwise unchanged. (Two A/A runs of identical Tollgate bundles, the second one to run lost
  // on p99 in 4 of 5 pairs with the reducer and 4 of 6 without: the host's noise is larger than
  // this effect, if any, but there is no reason to leave it in.)
  const idleFlags = ['--no-memory-reducer'];
  if (only.has('c')) {
    const port = await freePort();
    const profArgs = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${path.join(root, 'bench-results', 'c')}`] : [];
    const bare = await startProc(
      process.execPath,
      [...idleFlags, ...profArgs, self, '--role=bare-proxy', `--port=${port}`, `--upstream=${upstream}`],
      { cpu: proxyCpu, ipc: true },
    );
    targets.c = { url: `http://127.0.0.1:${port}/echo/hello`, headers: {}, pid: bare.pid };
  }

  let gatewayKey = null;
  let startFlagsForTls = [];
  let gatewayEnvForTls = null;
  const gatewayEnv = (port, adminPort, accessLog) => ({
    REDIS_URL: redisUrl,
    REDIS_PREFIX: prefix,
    GATEWAY_PORT: String(port),
    GATEWAY_ADMIN_PORT: String(adminPort),
    GATEWAY_HOST: '127.0.0.1',
    GATEWAY_WORKERS: '1',
    GATEWAY_SPOOL_DIR: path.join(work, `spool-${port}`),
    GATEWAY_ACCESS_LOG: accessLog ? 'true' : 'false',
    LOG_LEVEL: accessLog ? 'info' : (process.env.BENCH_GATEWAY_LOG_LEVEL ?? 'warn'),
    NODE_ENV: 'production',
    ...(process.env.BENCH_GATEWAY_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_GATEWAY_NODE_OPTIONS } : {}),
  });
  const host = 'bench.localhost';
  if (only.has('d')) {
    // Publish a tenant the way the control plane would: snapshot, version, key record.
    const tenantId = 'ten_bench';
    const apiId = 'api_bench';
    const planId = 'pln_bench';
    const snapshot = {
      schemaVersion: 1,
      tenantId,
      tenantSlug: 'bench',
      version: 1,
      publishedAt: new Date().toISOString(),
      hosts: [],
      allowPrivateTargets: true,
      apis: [
        {
          id: apiId,
          slug: 'echo',
          name: 'Echo',
          basePath: '/echo',
          version: 'v1',
          authMode: 'api_key',
          allowQueryKey: false,
          failMode: 'open',
          loadBalancing: 'round_robin',
          timeouts: { connectMs: 1000, headersMs: 5000, requestMs: 10000 },
          retries: 1,
          jwt: null,
          targets: [{ id: 'tgt_bench', url: upstream, weight: 1, healthCheck: null }],
          routes: [{ id: 'rte_bench', methods: [], path: '/*', timeoutMs: null, cacheTtlSeconds: 0, transform: null, rateLimit: null }],
        },
        {
          // (de): the same API with CORS and IP rules on (ADR 0025).
          id: 'api_bench_edge',
          slug: 'edge',
          name: 'Edge',
          basePath: '/edge',
          version: 'v1',
          authMode: 'api_key',
          allowQueryKey: false,
          failMode: 'open',
          loadBalancing: 'round_robin',
          timeouts: { connectMs: 1000, headersMs: 5000, requestMs: 10000 },
          retries: 1,
          jwt: null,
          targets: [{ id: 'tgt_bench_edge', url: upstream, weight: 1, healthCheck: null }],
          routes: [
            { id: 'rte_bench_edge', methods: [], path: '/*', timeoutMs: null, cacheTtlSeconds: 0, transform: null, rateLimit: null },
          ],
          cors: {
            origins: ['https://app.example.com', 'https://admin.example.com', 'http://localhost:3000'],
            methods: ['GET', 'POST'],
            headers: ['Content-Type', 'Authorization'],
            exposedHeaders: ['X-Request-Id', 'RateLimit', 'RateLimit-Policy'],
            credentials: true,
            maxAgeSeconds: 600,
          },
          ipRules: {
            allow: [],
            // 200 CIDRs of mixed lengths and both families, none matching the load generator.
            deny: Array.from({ length: 200 }, (_, i) =>
              i % 2 ? `2001:db8:${i.toString(16)}::/${48 + (i % 4) * 8}` : `198.${18 + (i % 2)}.${i}.0/${20 + (i % 5)}`,
            ),
          },
        },
      ],
      plans: [
        {
          id: planId,
          slug: 'bench',
          name: 'Bench',
          // BENCH_NO_LIMITS=1: a plan without rate or quota, to see what the limiter round trip costs.
          rateLimit: process.env.BENCH_NO_LIMITS ? null : { limit: 1_000_000_000, windowSeconds: 60, algorithm: 'sliding_window' },
          quota: process.env.BENCH_NO_LIMITS ? null : { limit: 1_000_000_000, mode: 'hard_cap' },
          apiIds: [apiId, 'api_bench_edge'],
        },
      ],
    };
    // @tollgate/keys ships TypeScript source: mint the key through tsx.
    gatewayKey = execFileSync(
      process.execPath,
      ['--import', 'tsx', '-e', "import('@tollgate/keys').then((k) => process.stdout.write(k.generateApiKey('test')))"],
      {
        cwd: root,
        encoding: 'utf8',
      },
    ).trim();
    const hash = createHash('sha256').update(gatewayKey).digest('hex');
    const now = Date.now();
    const record = {
      schemaVersion: 1,
      keyId: 'key_bench',
      tenantId,
      consumerId: 'con_bench',
      subscriptionId: 'sub_bench',
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
    };
    await redis.set(`${prefix}:policy:${tenantId}`, JSON.stringify(snapshot));
    await redis.hset(`${prefix}:policy:versions`, tenantId, '1');
    await redis.set(`${prefix}:key:${hash}`, JSON.stringify(record));
    const port = await freePort();
    const adminPort = await freePort();
    // Tollgate runs as `npm start` and the container image run it: with the node flags of the
    // gateway's start script (--single-threaded-gc, ADR 0014).
    const startFlags = JSON.parse(readFileSync(path.join(root, 'apps/gateway/package.json'), 'utf8'))
      .scripts.start.split(/\s+/)
      .filter((a) => a.startsWith('--'));
    const nodeArgs = [
      ...startFlags,
      ...idleFlags,
      ...(process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${path.join(root, 'bench-results')}`] : []),
    ];
    // Extra runtime flags, including ones NODE_OPTIONS refuses (e.g. --trace-gc), for (d) and (dp).
    if (process.env.BENCH_GATEWAY_NODE_ARGS) nodeArgs.push(...process.env.BENCH_GATEWAY_NODE_ARGS.split(' ').filter(Boolean));
    startFlagsForTls = [...startFlags, ...idleFlags];
    gatewayEnvForTls = (p, a) => gatewayEnv(p, a, false);
    const gw = await startProc(process.execPath, [...nodeArgs, path.join(root, 'apps/gateway/dist/main.js')], {
      cpu: proxyCpu,
      env: gatewayEnv(port, adminPort, false),
    });
    targets.d = {
      url: `http://127.0.0.1:${port}/echo/hello`,
      headers: { Host: host, Authorization: `Bearer ${gatewayKey}` },
      pid: gw.pid,
      admin: adminPort,
    };
    await waitHttp(targets.d.url, targets.d.headers);
    if (process.env.BENCH_EDGE !== '0') {
      targets.de = {
        url: `http://127.0.0.1:${port}/edge/hello`,
        headers: { ...targets.d.headers, Origin: 'https://app.example.com' },
        pid: gw.pid,
      };
      await waitHttp(targets.de.url, targets.de.headers);
    }
    if (process.env.BENCH_BASELINE_REF) process.env.BENCH_BASELINE = buildBaselineBundle(process.env.BENCH_BASELINE_REF, work);
    if (process.env.BENCH_BASELINE) {
      // A/B under the same load: (d0) runs another bundle (e.g. a copy of dist/main.js from
      // before a change, kept next to it so it resolves the same node_modules), interleaved with (d).
      const p0 = await freePort();
      const a0 = await freePort();
      const baseArgs = (process.env.BENCH_BASELINE_NODE_ARGS ?? '').split(' ').filter(Boolean);
      const base = await startProc(process.execPath, [...startFlags, ...idleFlags, ...baseArgs, path.resolve(process.env.BENCH_BASELINE)], {
        cpu: proxyCpu,
        env: gatewayEnv(p0, a0, false),
      });
      await waitHttp(`http://127.0.0.1:${p0}/echo/hello`, targets.d.headers);
      targets.d0 = { url: `http://127.0.0.1:${p0}/echo/hello`, headers: targets.d.headers, pid: base.pid };
    }
    if (process.env.BENCH_TRACING !== '0') {
      // (dt): the same bundle with OpenTelemetry on, sampling 1% of requests, exporting to a sink
      // on the load core (the upstream process answers /v1/traces).
      const p4 = await freePort();
      const a4 = await freePort();
      const traced = await startProc(process.execPath, [...startFlags, ...idleFlags, path.join(root, 'apps/gateway/dist/main.js')], {
        cpu: proxyCpu,
        env: {
          ...gatewayEnv(p4, a4, false),
          OTEL_EXPORTER_OTLP_ENDPOINT: upstream,
          OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
          OTEL_TRACES_SAMPLER_ARG: process.env.BENCH_TRACING_RATIO ?? '0.01',
        },
      });
      await waitHttp(`http://127.0.0.1:${p4}/echo/hello`, targets.d.headers);
      targets.dt = { url: `http://127.0.0.1:${p4}/echo/hello`, headers: targets.d.headers, pid: traced.pid };
    }
    if (process.env.BENCH_PER_CALL !== '0') {
      // (dp): the same bundle with limit reservations off (GATEWAY_LIMIT_RESERVATIONS=false, ADR
      // 0013): every call waits for its own decision from Redis.
      const p3 = await freePort();
      const a3 = await freePort();
      const perCall = await startProc(
        process.execPath,
        [...nodeArgs.filter((x) => !x.startsWith('--cpu-prof')), path.join(root, 'apps/gateway/dist/main.js')],
        {
          cpu: proxyCpu,
          env: { ...gatewayEnv(p3, a3, false), GATEWAY_LIMIT_RESERVATIONS: 'false' },
        },
      );
      await waitHttp(`http://127.0.0.1:${p3}/echo/hello`, targets.d.headers);
      targets.dp = { url: `http://127.0.0.1:${p3}/echo/hello`, headers: targets.d.headers, pid: perCall.pid };
    }
    if (process.env.BENCH_ACCESS_LOG) {
      const p2 = await freePort();
      const a2 = await freePort();
      const logged = await startProc(
        'sh',
        [
          '-c',
          `exec ${process.execPath} ${[...startFlags, ...idleFlags].join(' ')} ${path.join(root, 'apps/gateway/dist/main.js')} > /dev/null`,
        ],
        {
          cpu: proxyCpu,
          env: gatewayEnv(p2, a2, true),
        },
      );
      await waitHttp(`http://127.0.0.1:${p2}/echo/hello`, targets.d.headers);
      targets['d+log'] = { url: `http://127.0.0.1:${p2}/echo/hello`, headers: targets.d.headers, pid: logged.pid };
    }
  }

  if (process.env.BENCH_HOLD) {
    // Debugging aid: keep everything up for poking at by hand.
    console.log(
      JSON.stringify(Object.fromEntries(Object.entries(targets).map(([k, v]) => [k, { url: v.url, headers: v.headers, pid: v.pid }]))),
    );
    await new Promise((r) => setTimeout(r, Number(process.env.BENCH_HOLD) * 1000));
  }
  const names = {
    d0: 'Tollgate, BENCH_BASELINE bundle',
    a: 'upstream direct',
    b: 'nginx keep-alive proxy',
    c: 'bare Fastify + undici',
    d: 'Tollgate (auth+limit+quota+usage)',
    'd+log': 'Tollgate + access logs',
    dp: 'Tollgate, reservations off',
    de: 'Tollgate + CORS + IP rules',
    dt: `Tollgate + tracing ${Number(process.env.BENCH_TRACING_RATIO ?? '0.01') * 100}% sampled`,
  };
  const results = {};
  const order = ['a', 'b', 'c', 'd0', 'd', 'de', 'dt', 'dp', 'd+log'].filter((k) => targets[k]);
  // Warm-up (JIT, pools, key cache), then interleaved repeats so drift hits all alike.
  for (const k of order) runWrk(targets[k].url, targets[k].headers, { duration: 2, connections, cpu: loadCpu });
  await dropUsage();
  for (let r = 0; r < (duration > 0 ? repeats : 0); r++) {
    // Every other repeat runs the scenarios in reverse, so no pair (d0 and d, d and de: the last
    // two share a process) always runs in the same order: a drift or one run's leftovers (GC
    // debt, a warm or cold cache) then weigh on both sides alike.
    const runOrder = r % 2 === 1 ? [...order].reverse() : order;
    for (const k of runOrder) {
      const before = cpuTicks(targets[k].pid);
      const res = runWrk(targets[k].url, targets[k].headers, { duration, connections, cpu: loadCpu });
      // CPU time the proxy itself burnt per request: robust to other load on a shared machine.
      res.cpuUsPerReq = targets[k].pid ? ((cpuTicks(targets[k].pid) - before) / TICKS / (res.rps * duration)) * 1e6 : null;
      await dropUsage();
      (results[k] ??= []).push(res);
      console.log(
        `  run ${r + 1} ${k.padEnd(5)} ${res.rps.toFixed(0).padStart(7)} req/s  p50 ${res.p50?.toFixed(2)} ms  p99 ${res.p99?.toFixed(2)} ms${res.cpuUsPerReq ? `  cpu ${res.cpuUsPerReq.toFixed(1)} µs/req` : ''}${res.non2xx ? `  non-2xx ${res.non2xx}` : ''}${res.errors ? `  errors ${res.errors}` : ''}`,
      );
    }
  }

  const med = {};
  if (duration > 0) {
    console.log('\nclosed loop, medians of', repeats, '(proxy pinned to 1 core, so req/s = req/s per core):');
    console.log(
      '  scenario                               req/s/core    p50 ms    p99 ms   cpu µs/req  req/s per busy core   cpu µs/req min-max',
    );
    for (const k of order) {
      const cpus = targets[k].pid ? results[k].map((x) => x.cpuUsPerReq) : null;
      const cpu = cpus ? median(cpus) : null;
      med[k] = {
        rps: median(results[k].map((x) => x.rps)),
        p50: median(results[k].map((x) => x.p50)),
        p99: median(results[k].map((x) => x.p99)),
        cpu,
      };
      console.log(
        `  (${k}) ${names[k].padEnd(34)} ${med[k].rps.toFixed(0).padStart(9)} ${med[k].p50.toFixed(2).padStart(9)} ${med[k].p99.toFixed(2).padStart(9)} ${cpu ? cpu.toFixed(1).padStart(12) : '           -'} ${cpu ? (1e6 / cpu).toFixed(0).padStart(20) : ''}${cpus ? `   ${Math.min(...cpus).toFixed(1)}-${Math.max(...cpus).toFixed(1)}` : ''}`,
      );
    }
    if (med.d && med.c)
      console.log(
        `  ratio d/c = ${(med.d.rps / med.c.rps).toFixed(3)} by req/s, ${(med.c.cpu / med.d.cpu).toFixed(3)} by CPU per request  (goal ≥ 0.80)`,
      );
    if (med.d && med.c && repeats > 1) {
      // c and d of one repeat run seconds apart, so their ratio cancels the host's slower drift;
      // a wide min-max above says the host, not the code, moved the medians.
      const pairs = results.c.map((rc, i) => rc.cpuUsPerReq / results.d[i].cpuUsPerReq);
      console.log(`  ratio d/c by CPU, repeat by repeat: ${pairs.map((x) => x.toFixed(3)).join(' ')} (median ${median(pairs).toFixed(3)})`);
    }
    if (med.de && med.d && repeats > 0) {
      // One process serves both: (de) − (d) is what CORS and IP rules add per request.
      const diffs = results.de.map((re, i) => re.cpuUsPerReq - results.d[i].cpuUsPerReq);
      console.log(
        `  CORS + IP rules: ${(med.de.cpu - med.d.cpu).toFixed(2)} µs/req by CPU (de − d medians); repeat by repeat ${diffs.map((x) => x.toFixed(2)).join(' ')} (median ${median(diffs).toFixed(2)}; goal ≤ 3)`,
      );
    }
    if (med.d0 && med.d && repeats > 1) {
      const pairs = results.d0.map((r0, i) => r0.cpuUsPerReq / results.d[i].cpuUsPerReq);
      console.log(
        `  ratio (d/c) ÷ (d0/c) by CPU, repeat by repeat: ${pairs.map((x) => x.toFixed(3)).join(' ')} (median ${median(pairs).toFixed(3)}; above 1 = d cheaper)`,
      );
    }
    if (med.dp && med.c)
      console.log(
        `  ratio dp/c = ${(med.dp.rps / med.c.rps).toFixed(3)} by req/s, ${(med.c.cpu / med.dp.cpu).toFixed(3)} by CPU per request (every call decided in Redis)`,
      );
    if (med.d0 && med.c)
      console.log(`  ratio d0/c = ${(med.c.cpu / med.d0.cpu).toFixed(3)} by CPU per request (the BENCH_BASELINE bundle)`);
    if (med.d0 && med.d && repeats > 1) {
      // The A/B of this build against the BENCH_BASELINE one, repeat by repeat (runs seconds apart).
      const pairs = results.d0.map((r0, i) => results.d[i].cpuUsPerReq / r0.cpuUsPerReq);
      console.log(
        `  d vs d0 by CPU per request, repeat by repeat: ${pairs.map((x) => x.toFixed(3)).join(' ')} (median ${median(pairs).toFixed(3)}; 1 = no change)`,
      );
    }
    if (med.dt && med.d) {
      const deltas = results.dt.map((rt, i) => rt.cpuUsPerReq - results.d[i].cpuUsPerReq);
      console.log(
        `  tracing (dt - d): ${deltas.map((x) => x.toFixed(2)).join(' ')} µs CPU per request, repeat by repeat (median ${median(deltas).toFixed(2)} µs; ${((100 * median(deltas)) / med.d.cpu).toFixed(1)}% of d)`,
      );
    }
    if (med.d && med.b)
      console.log(`  ratio d/b = ${(med.d.rps / med.b.rps).toFixed(3)} by req/s, ${(med.b.cpu / med.d.cpu).toFixed(3)} by CPU per request`);
  }

  if (only.has('t') && targets.d && duration > 0) {
    const { benchTls } = await import('./bench-gateway-tls.mjs');
    console.log('\nTLS: HTTP/1.1 against HTTP/2, one gateway, interleaved:');
    await benchTls({
      work,
      headers: targets.d.headers,
      duration,
      repeats,
      connections,
      loadCpu,
      cpuTicks,
      ticks: TICKS,
      median,
      startGateway: async (extra) => {
        const [port, adminPort, tlsPort] = [await freePort(), await freePort(), await freePort()];
        const proc = await startProc(process.execPath, [...startFlagsForTls, path.join(root, 'apps/gateway/dist/main.js')], {
          cpu: proxyCpu,
          env: { ...gatewayEnvForTls(port, adminPort), GATEWAY_TLS_PORT: String(tlsPort), ...extra },
        });
        await waitHttp(`http://127.0.0.1:${port}/echo/hello`, targets.d.headers);
        return { pid: proc.pid, tlsPort };
      },
    });
  }

  console.log(
    `\nopen loop at ${rate} req/s for ${openDuration}s (latency from intended send time, ${process.env.BENCH_OPEN_PACER === 'spin' ? 'spinning' : 'thread'} pacer), medians of ${repeats}:`,
  );
  console.log('  scenario                                 p50 ms   p99 ms  p99.9 ms  errors');
  const open = {};
  // nginx too: what any proxy hop costs on this host, to read (c) and (d) against.
  const openKeys = ['a', 'b', 'c', 'd0', 'd', 'dt', 'dp'].filter((x) => targets[x] && openDuration > 0);
  const openRuns = Object.fromEntries(openKeys.map((k) => [k, []]));
  const pacer = process.env.BENCH_OPEN_PACER === 'spin' ? 'spin' : 'thread';
  // Interleaved (a, c, d, a, c, d, …) so a drifting machine shifts all three alike.
  for (let r = 0; r < repeats; r++) {
    for (const k of openKeys) {
      const out = execFileSync(
        'taskset',
        [
          '-c',
          loadCpu,
          process.execPath,
          self,
          '--role=openloop',
          `--pacer=${pacer}`,
          `--url=${targets[k].url}`,
          `--rate=${rate}`,
          `--duration=${openDuration}`,
          `--headers=${JSON.stringify(targets[k].headers)}`,
        ],
        { encoding: 'utf8' },
      );
      const run = JSON.parse(out.trim().split('\n').at(-1));
      openRuns[k].push(run);
      await dropUsage();
      if (process.env.BENCH_VERBOSE)
        console.log(
          `  run ${r + 1} ${k}  p50 ${run.p50.toFixed(3)}  p99 ${run.p99.toFixed(3)}  p99.9 ${run.p999.toFixed(3)} ms  client cpu ${run.clientCpuMs} ms  (ended ${new Date().toISOString().slice(11, 19)})`,
        );
    }
  }
  for (const k of openKeys) {
    const runs = openRuns[k];
    open[k] = {
      p50: median(runs.map((x) => x.p50)),
      p99: median(runs.map((x) => x.p99)),
      p999: median(runs.map((x) => x.p999)),
      errors: runs.reduce((s, x) => s + x.errors, 0),
    };
    console.log(
      `  (${k}) ${names[k].padEnd(34)} ${open[k].p50.toFixed(3).padStart(8)} ${open[k].p99.toFixed(3).padStart(8)} ${open[k].p999.toFixed(3).padStart(9)} ${String(open[k].errors).padStart(7)}`,
    );
  }
  if (open.d && open.a) {
    console.log(
      `  Tollgate adds ${(open.d.p50 - open.a.p50).toFixed(3)} ms at p50 (goal ≤ 0.3) and ${(open.d.p99 - open.a.p99).toFixed(3)} ms at p99 (goal ≤ 2) over direct`,
    );
  }
  for (const k of ['b', 'c']) {
    if (open[k] && open.a)
      console.log(
        `  for comparison, (${k}) adds ${(open[k].p50 - open.a.p50).toFixed(3)} ms at p50 and ${(open[k].p99 - open.a.p99).toFixed(3)} ms at p99 over direct`,
      );
  }
  if (open.dt && open.d) {
    console.log(
      `  tracing (dt) adds ${(open.dt.p50 - open.d.p50).toFixed(3)} ms at p50 and ${(open.dt.p99 - open.d.p99).toFixed(3)} ms at p99 over (d)`,
    );
  }
  if (open.dp && open.a) {
    console.log(
      `  with reservations off (dp): adds ${(open.dp.p50 - open.a.p50).toFixed(3)} ms at p50 and ${(open.dp.p99 - open.a.p99).toFixed(3)} ms at p99 over direct`,
    );
  }

  if (targets.d) {
    // How many of (d)'s calls needed no round trip of their own.
    const text = await (await fetch(`http://127.0.0.1:${targets.d.admin}/metrics`)).text();
    const metric = (re) => Number(text.match(re)?.[1] ?? NaN);
    const decided = metric(/tollgate_gateway_limit_reserved_calls_total\{use="decided"\} (\d+)/);
    const granted = metric(/tollgate_gateway_limit_reservations_total\{result="granted"\} (\d+)/);
    const all = metric(/tollgate_gateway_limiter_decisions_total\{result="allowed",source="redis"\} (\d+)/);
    console.log(
      `  (d) ${decided} of ${all} calls decided from ${granted} reservations (${((100 * decided) / all).toFixed(1)}% without a round trip of their own)`,
    );
  }
  const peak = String(await redis.info('memory')).match(/used_memory_peak_human:(\S+)/)?.[1];
  console.log(`  usage batches dropped between runs (no worker here): ${usageDropped}; Redis peak memory ${peak}`);
  await usageQueue.close();
  if (process.env.BENCH_DEBUG && redisWhere.startsWith('private')) {
    // Redis's own record of stalls (>= 2 ms) and slow commands (>= 1 ms) during the run.
    console.log('\n--- redis LATENCY LATEST (event, at, latest ms, max ms)\n' + JSON.stringify(await redis.call('LATENCY', 'LATEST')));
    const slow = await redis.call('SLOWLOG', 'GET', '10');
    console.log(
      '--- redis SLOWLOG (µs, command)\n' + slow.map((e) => `${e[2]} ${String(e[3].slice(0, 3).join(' ')).slice(0, 120)}`).join('\n'),
    );
  }
  // Cleanup: stop everything we started (the gateways first: they flush usage on SIGTERM), then
  // remove our prefix from a shared Redis; a private one just goes.
  const stop = async (list) => {
    for (const p of list) if (p.exitCode === null) p.kill('SIGTERM');
    await Promise.all(list.map((p) => (p.exitCode === null ? new Promise((r) => p.once('exit', r)) : null)));
  };
  const redisProc = procs.find((p) => p.spawnargs.includes('redis-server'));
  await stop(procs.filter((p) => p !== redisProc));
  // After the exit, so what the gateway buffered (e.g. --trace-gc lines) is all there.
  if (process.env.BENCH_DEBUG) {
    for (const k of ['d', 'd0']) {
      if (targets[k])
        console.log(
          `\n--- gateway (${k}) output\n` +
            procs
              .find((p) => p.pid === targets[k].pid)
              ?.output()
              .slice(-Number(process.env.BENCH_DEBUG_CHARS ?? 5000)),
        );
    }
  }
  if (redisProc) {
    redis.disconnect();
    await stop([redisProc]);
  } else {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.unlink(...keys);
    } while (cursor !== '0');
    await redis.quit();
  }
  if (process.env.BENCH_PROFILE) {
    const dir = path.join(root, 'bench-results');
    // The newest profile Node wrote in this run (not a gateway-d.cpuprofile left by an earlier run).
    const prof = readdirSync(dir)
      .filter((f) => f.startsWith('CPU.') && f.endsWith('.cpuprofile'))
      .sort()
      .at(-1);
    if (prof) {
      renameSync(path.join(dir, prof), path.join(dir, 'gateway-d.cpuprofile'));
      console.log(`\nCPU profile of (d): bench-results/gateway-d.cpuprofile`);
    }
  }
  rmSync(work, { recursive: true, force: true });
  process.exit(0);
}

process.on('exit', () => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
});

// ---------------------------------------------------------------- roles (child processes)
async function dispatch() {
  // A clean exit on SIGTERM lets --cpu-prof write its profile.
  process.on('SIGTERM', () => process.exit(0));
  if (args.role === 'upstream') {
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.url === '/v1/traces') {
          // (dt)'s OTLP exports: an empty ExportTraceServiceResponse is a complete answer.
          res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': 0 });
          res.end();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY) });
        res.end(BODY);
      });
    });
    server.keepAliveTimeout = 65_000;
    server.listen(Number(args.port), '127.0.0.1', () => process.send?.('ready'));
  } else if (args.role === 'bare-proxy') {
    // The floor for any Node gateway: Fastify routing + undici keep-alive pool + streaming, no policy.
    const { default: Fastify } = await import('fastify');
    const { Pool } = await import('undici');
    const pool = new Pool(args.upstream, { connections: 128, pipelining: 1 });
    const app = Fastify({ logger: false });
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', (_req, _payload, done) => done(null));
    const HOP = new Set([
      'connection',
      'keep-alive',
      'transfer-encoding',
      'host',
      'upgrade',
      'te',
      'trailer',
      'proxy-connection',
      'expect',
    ]);
    app.all('/*', async (request, reply) => {
      const raw = request.raw.rawHeaders;
      const headers = [];
      for (let i = 0; i < raw.length; i += 2) {
        const n = raw[i].toLowerCase();
        if (!HOP.has(n)) headers.push(n, raw[i + 1]);
      }
      const hasBody = request.raw.headers['content-length'] !== undefined || request.raw.headers['transfer-encoding'] !== undefined;
      const res = await pool.request({ method: request.raw.method, path: request.raw.url, headers, body: hasBody ? request.raw : null });
      const out = {};
      for (const k in res.headers) if (!HOP.has(k)) out[k] = res.headers[k];
      reply.code(res.statusCode).headers(out);
      return reply.send(res.body);
    });
    await app.listen({ port: Number(args.port), host: '127.0.0.1' });
    process.send?.('ready');
  } else if (args.role === 'openloop') {
    await openLoop(args);
  } else {
    await main();
  }
}

await dispatch();
