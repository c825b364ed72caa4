// Tracing's cost per request (a script, not a test): `npm run bench:tracing` (docs/adr/0027).
//
// Three gateways in this one process, on the same Redis, upstream and client: tracing off, on at
// 1% sampling (parentbased_traceidratio 0.01) and on at 100%, exporting to a sink in this process.
// They take turns in short blocks of the same calls (key auth, limits, usage events, forward), and
// each block's CPU time (process.cpuUsage: gateway, client and upstream together) is divided by
// its calls. What the client and upstream cost is the same for all three, so the difference
// between two gateways' blocks of one round is tracing's own cost; the median over rounds is what
// is printed. Short interleaved blocks keep a busy or drifting machine from favouring one side;
// `bench:gateway` (rows d, dt, and d0 with BENCH_BASELINE_REF) measures the same on a pinned core.
//
// Env: BENCH_ROUNDS (20), BENCH_BLOCK (1000 calls), BENCH_CONCURRENCY (32), BENCH_VARIANTS (1%,100%;
// also 0%: the SDK loaded, nothing sampled), REDIS_URL.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { Pool } from 'undici';
import { generateApiKey, hashApiKey } from '@tollgate/keys';
import { createKeyspace } from '@tollgate/policy';
import { startTracing } from '@tollgate/telemetry/sdk';
import { loadGatewayConfig } from '../apps/gateway/src/env';
import type { RequestContext } from '../apps/gateway/src/pipeline/context';
import { createGatewayTracer, startTrace } from '../apps/gateway/src/pipeline/trace';
import { createGateway, type Gateway } from '../apps/gateway/src/server';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 20);
const BLOCK = Number(process.env.BENCH_BLOCK ?? 1000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
/** Which gateways take turns: `off` always; `0%` (SDK loaded, nothing sampled), `1%`, `100%`. */
const VARIANTS = ['off', ...(process.env.BENCH_VARIANTS ?? '1%,100%').split(',').filter((v) => v !== 'off')];
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `tgbtrace_${Math.random().toString(36).slice(2, 8)}`;

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const BODY = JSON.stringify({ ok: true, message: 'hello from upstream', n: 42 });
let spansExported = 0;
const upstream = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    if (req.url === '/v1/traces') {
      spansExported += Buffer.concat(chunks).length;
      res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': 0 }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY) }).end(BODY);
  });
});

async function main() {
  const upstreamUrl = await listen(upstream);
  const redis = new Redis(redisUrl);
  const ks = createKeyspace(prefix);
  const tenantId = 'ten_btrace';
  const apiId = 'api_btrace';
  const planId = 'pln_btrace';
  const snapshot = {
    schemaVersion: 1,
    tenantId,
    tenantSlug: 'btrace',
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
        targets: [{ id: 'tgt_btrace', url: upstreamUrl, weight: 1, healthCheck: null }],
        routes: [{ id: 'rte_btrace', methods: [], path: '/*', timeoutMs: null, cacheTtlSeconds: 0, transform: null, rateLimit: null }],
      },
    ],
    plans: [
      {
        id: planId,
        slug: 'bench',
        name: 'Bench',
        rateLimit: { limit: 1_000_000_000, windowSeconds: 60, algorithm: 'sliding_window' },
        quota: { limit: 1_000_000_000, mode: 'hard_cap' },
        apiIds: [apiId],
      },
    ],
  };
  const key = generateApiKey('test');
  const now = Date.now();
  await redis.set(ks.policy(tenantId), JSON.stringify(snapshot));
  await redis.hset(ks.policyVersions, tenantId, '1');
  await redis.set(
    ks.key(hashApiKey(key)),
    JSON.stringify({
      schemaVersion: 1,
      keyId: 'key_btrace',
      tenantId,
      consumerId: 'con_btrace',
      subscriptionId: 'sub_btrace',
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
    }),
  );

  const spool = mkdtempSync(path.join(tmpdir(), 'tg-btrace-'));
  const all: Record<string, Record<string, string>> = {
    off: {},
    '0%': { OTEL_EXPORTER_OTLP_ENDPOINT: upstreamUrl, OTEL_TRACES_SAMPLER: 'always_off' },
    '1%': { OTEL_EXPORTER_OTLP_ENDPOINT: upstreamUrl, OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.01' },
    '100%': { OTEL_EXPORTER_OTLP_ENDPOINT: upstreamUrl, OTEL_TRACES_SAMPLER: 'parentbased_always_on' },
  };
  const variants = Object.fromEntries(VARIANTS.map((v) => [v, all[v]!]));
  const gateways: { name: string; gw: Gateway; pool: Pool }[] = [];
  for (const [name, extra] of Object.entries(variants)) {
    const config = loadGatewayConfig({
      REDIS_URL: redisUrl,
      REDIS_PREFIX: prefix,
      GATEWAY_PORT: '0',
      GATEWAY_HOST: '127.0.0.1',
      GATEWAY_SPOOL_DIR: path.join(spool, name.replace('%', 'pct')),
      GATEWAY_ACCESS_LOG: 'false',
      LOG_LEVEL: 'warn',
      NODE_ENV: 'production',
      ...extra,
    });
    const gw = await createGateway(config);
    const { port } = await gw.listen();
    gateways.push({ name, gw, pool: new Pool(`http://127.0.0.1:${port}`, { connections: CONCURRENCY }) });
  }
  const headers = { host: 'btrace.localhost', authorization: `Bearer ${key}` };
  let failures = 0;
  const block = async (pool: Pool, n: number) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < n) {
          next++;
          const res = await pool.request({ method: 'GET', path: '/echo/hello', headers });
          if (res.statusCode !== 200) failures++;
          await res.body.dump();
        }
      }),
    );
  };
  // Warm-up: JIT, connections, key cache, limit reservations.
  for (const g of gateways) await block(g.pool, 3 * BLOCK);

  const perCall: Record<string, number[]> = Object.fromEntries(gateways.map((g) => [g.name, []]));
  for (let r = 0; r < ROUNDS; r++) {
    // A different order every round, so no variant always runs right after the same one.
    const order = gateways.map((_, i) => gateways[(i + r) % gateways.length]!);
    for (const g of order) {
      const before = process.cpuUsage();
      await block(g.pool, BLOCK);
      const used = process.cpuUsage(before);
      perCall[g.name]!.push((used.user + used.system) / BLOCK);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const quartiles = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return `${s[Math.floor(s.length / 4)]!.toFixed(2)}…${s[Math.floor((3 * s.length) / 4)]!.toFixed(2)}`;
  };
  console.log(`tracing cost per call, ${ROUNDS} rounds of ${BLOCK} calls each (concurrency ${CONCURRENCY}), node ${process.version}`);
  console.log('  variant   CPU µs/call (gateway + client + upstream, one process)');
  for (const g of gateways) console.log(`  ${g.name.padEnd(8)}  ${median(perCall[g.name]!).toFixed(2)}`);
  for (const name of VARIANTS.slice(1)) {
    const diffs = perCall[name]!.map((x, i) => x - perCall.off![i]!);
    console.log(
      `  tracing ${name.padEnd(4)} - off: median ${median(diffs).toFixed(2)} µs per call (interquartile ${quartiles(diffs)} µs, round by round)`,
    );
  }
  console.log(`  non-200 answers: ${failures}; OTLP bytes received by the sink: ${spansExported}`);

  await hookCost(upstreamUrl);

  for (const g of gateways) {
    await g.pool.close();
    await g.gw.shutdown();
  }
  let cursor = '0';
  do {
    const [nextCursor, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = nextCursor;
    if (keys.length) await redis.unlink(...keys);
  } while (cursor !== '0');
  redis.disconnect();
  upstream.close();
  rmSync(spool, { recursive: true, force: true });
}

/**
 * The request path's tracing hook alone, no I/O, for a request that is not sampled (what 99 in
 * 100 are at 1%): start the server span, format the upstream's traceparent, end the span. A
 * tight loop on one core is far less exposed to a busy machine than the HTTP rounds above.
 */
async function hookCost(sink: string) {
  const config = loadGatewayConfig({
    OTEL_EXPORTER_OTLP_ENDPOINT: sink,
    OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
    OTEL_TRACES_SAMPLER_ARG: '0',
  });
  const tracing = await startTracing(config.tracing!, { scope: 'bench' });
  const tracer = createGatewayTracer(tracing, 'trusted');
  const ctx = {
    gw: { tracing: tracer, isTrusted: () => false, proto: 'http' },
    headers: { host: 'btrace.localhost' },
    req: { url: '/echo/hello', socket: { remoteAddress: '127.0.0.1' } },
    request: { id: '01JABCDEFGHJKMNPQRSTVWXYZ0' },
    method: 'GET',
    trace: null,
    route: null,
    api: null,
    tenant: null,
    identity: null,
    rejected: null,
    answeredBy: 'upstream',
  } as unknown as RequestContext;
  const N = 200_000;
  const runs: number[] = [];
  for (let r = 0; r < 9; r++) {
    // CPU time, not wall time: on a busy machine the wall clock also counts time spent descheduled.
    const t0 = process.cpuUsage();
    for (let i = 0; i < N; i++) {
      startTrace(ctx, tracer);
      const trace = ctx.trace!;
      if (trace.usageTraceparent().length !== 55) throw new Error('bad traceparent');
      trace.end(ctx, 200);
    }
    const used = process.cpuUsage(t0);
    runs.push((used.user + used.system) / N);
  }
  runs.sort((a, b) => a - b);
  console.log(
    `  hook alone, unsampled request (start span, traceparent, end): ${runs[4]!.toFixed(3)} µs (min ${runs[0]!.toFixed(3)}, max ${runs[8]!.toFixed(3)}, 9 × ${N})`,
  );
  await tracing.shutdown();
}

await main();
process.exit(0);
