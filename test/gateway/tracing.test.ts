// OpenTelemetry in a real gateway process (ADR 0027), checked from the outside: what an OTLP
// collector receives, and what the upstream is sent.
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { testEnv, testKeyspace, testRedis } from '../harness';
import { SPAN_KIND, startOtlpCollector, type OtlpCollector } from '../harness/otlp-collector';
import {
  issueKey,
  makeApi,
  makePlan,
  makeSnapshot,
  publishSnapshot,
  queuedUsageEvents,
  root,
  spawnGateway,
  startUpstream,
  type GatewayProcess,
  type IssuedKey,
  type Upstream,
} from './fixtures';

const hex = (n: number) => Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join('');
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/;

describe('gateway tracing (OpenTelemetry)', () => {
  const ks = testKeyspace('otel');
  let redis: Redis;
  let collector: OtlpCollector;
  let upstream: Upstream;
  let on: GatewayProcess;
  let off: GatewayProcess;
  let key: IssuedKey;
  let host: string;
  // Connections from 127.0.0.2, the one address the traced gateway trusts as a proxy.
  const trusted = new Agent({ localAddress: '127.0.0.2' });

  beforeAll(async () => {
    redis = testRedis();
    collector = await startOtlpCollector();
    upstream = await startUpstream();
    const api = makeApi(upstream.url);
    const plan = makePlan([api.id]);
    const snap = makeSnapshot([api], [plan]);
    await publishSnapshot(redis, ks, snap);
    key = await issueKey(redis, ks, snap.tenantId, plan);
    host = `${snap.tenantSlug}.localhost`;
    const common = { REDIS_URL: testEnv().redisUrl, REDIS_PREFIX: ks.prefix, GATEWAY_USAGE_BATCH_WAIT_MS: '20' };
    [on, off] = await Promise.all([
      spawnGateway({
        ...common,
        GATEWAY_SPOOL_DIR: mkdtempSync(path.join(tmpdir(), 'tg-otel-on-')),
        GATEWAY_TRUSTED_PROXIES: '127.0.0.2',
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_SERVICE_NAME: 'gw-traced',
        OTEL_BSP_SCHEDULE_DELAY: '50',
      }),
      // Configured to export, but disabled: nothing may reach the collector.
      spawnGateway({
        ...common,
        GATEWAY_SPOOL_DIR: mkdtempSync(path.join(tmpdir(), 'tg-otel-off-')),
        GATEWAY_TRUSTED_PROXIES: '127.0.0.2',
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_SERVICE_NAME: 'gw-disabled',
        OTEL_SDK_DISABLED: 'true',
        OTEL_BSP_SCHEDULE_DELAY: '50',
      }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([on?.stop('SIGKILL'), off?.stop('SIGKILL')]);
    await trusted.close();
    await upstream?.close();
    await collector?.close();
    redis?.disconnect();
  });

  /** One call; returns the status, the request id and the headers the upstream received. */
  async function call(gw: GatewayProcess, headers: Record<string, string | string[]>, from: 'trusted' | 'untrusted' = 'trusted') {
    const before = upstream.requests.length;
    const res = await request(`http://127.0.0.1:${gw.port}/echo/traced`, {
      headers: { host, 'x-api-key': key.key, ...headers },
      ...(from === 'trusted' ? { dispatcher: trusted } : {}),
    });
    await res.body.dump();
    const seen = upstream.requests.slice(before).at(-1);
    return { status: res.statusCode, requestId: String(res.headers['x-request-id']), upstream: seen?.headers ?? {} };
  }

  const spansOf = (traceId: string, service = 'gw-traced') =>
    collector
      .waitForSpans(
        (all) => all.some((s) => s.traceId === traceId && s.service === service && s.kind === SPAN_KIND.server),
        `server span of trace ${traceId}`,
      )
      .then((all) => all.filter((s) => s.traceId === traceId));

  it("continues a trusted peer's trace: server span under the client's, stage spans under it, upstream told the upstream span", async () => {
    const traceId = hex(32);
    const clientSpan = hex(16);
    const res = await call(on, { traceparent: `00-${traceId}-${clientSpan}-01`, tracestate: 'vendor=abc,other=1' });
    expect(res.status).toBe(200);
    const sent = TRACEPARENT.exec(String(res.upstream.traceparent));
    expect(sent?.[1]).toBe(traceId);
    expect(String(res.upstream.traceparent).endsWith('-01')).toBe(true);
    expect(sent?.[2]).not.toBe(clientSpan);
    expect(res.upstream.tracestate).toBe('vendor=abc,other=1');

    const spans = await spansOf(traceId);
    const server = spans.find((s) => s.kind === SPAN_KIND.server)!;
    expect(server.parentSpanId).toBe(clientSpan);
    expect(server.name).toBe('GET /echo/*');
    expect(server.attributes).toMatchObject({
      'http.request.method': 'GET',
      'http.response.status_code': 200,
      'http.route': '/echo/*',
      'tollgate.key.id': key.record.keyId,
      'tollgate.answered_by': 'upstream',
    });
    await collector.waitForSpans((all) => all.filter((s) => s.traceId === traceId).length >= 5, 'stage spans');
    const all = collector.spans.filter((s) => s.traceId === traceId);
    const stages = all.filter((s) => s.spanId !== server.spanId);
    expect(stages.map((s) => s.name).sort()).toEqual(['auth', 'authorize', 'limit', 'upstream']);
    for (const s of stages) expect(s.parentSpanId, s.name).toBe(server.spanId);
    const up = stages.find((s) => s.name === 'upstream')!;
    expect(up.kind).toBe(SPAN_KIND.client);
    // The upstream's parent is the gateway's upstream span, not the client's span.
    expect(sent?.[2]).toBe(up.spanId);
    expect(up.attributes['http.response.status_code']).toBe(200);
    // Children inside their parent's time.
    for (const s of stages) expect(s.startNs >= server.startNs && s.endNs <= server.endNs, s.name).toBe(true);
    // No key material in anything exported.
    expect(JSON.stringify(all, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))).not.toContain(key.key);
    // The usage event carries the server span, for the worker's link.
    const [event] = await queuedUsageEvents(redis, ks, [res.requestId]);
    expect(event!.traceparent).toBe(`00-${traceId}-${server.spanId}-01`);
  });

  it("gives an untrusted client's traceparent no say: a new trace, linked to theirs, and theirs never forwarded", async () => {
    const traceId = hex(32);
    const clientSpan = hex(16);
    const res = await call(on, { traceparent: `00-${traceId}-${clientSpan}-01`, tracestate: 'vendor=abc' }, 'untrusted');
    expect(res.status).toBe(200);
    const sent = TRACEPARENT.exec(String(res.upstream.traceparent));
    expect(sent).not.toBeNull();
    expect(sent![1]).not.toBe(traceId);
    expect(res.upstream.tracestate).toBeUndefined();
    const spans = await spansOf(sent![1]!);
    const server = spans.find((s) => s.kind === SPAN_KIND.server)!;
    expect(server.parentSpanId).toBe('');
    expect(server.links).toEqual([{ traceId, spanId: clientSpan }]);
    expect(collector.spans.some((s) => s.traceId === traceId)).toBe(false);
  });

  it('starts a trace when none came in and sends the upstream its traceparent', async () => {
    const res = await call(on, {});
    const sent = TRACEPARENT.exec(String(res.upstream.traceparent));
    expect(sent).not.toBeNull();
    const server = (await spansOf(sent![1]!)).find((s) => s.kind === SPAN_KIND.server)!;
    expect(server.parentSpanId).toBe('');
  });

  it('ignores hostile traceparent and tracestate values: a fresh root trace, never an error, never the value forwarded', async () => {
    const t = hex(32);
    const s = hex(16);
    const hostile: Record<string, string | string[]>[] = [
      { traceparent: 'garbage' },
      { traceparent: `ff-${t}-${s}-01` },
      { traceparent: `00-${'0'.repeat(32)}-${s}-01` },
      { traceparent: `00-${t}-${'0'.repeat(16)}-01` },
      { traceparent: `00-${t.toUpperCase()}-${s}-01` },
      { traceparent: `00-${t}-${s}-01-${'x'.repeat(8000)}` },
      { traceparent: `cc-${t}-${s}-01${'x'.repeat(8000)}` },
      { traceparent: [`00-${t}-${s}-01`, `00-${hex(32)}-${s}-01`] },
      { traceparent: `00-${t}-${s}-01 ;drop` },
    ];
    for (const headers of hostile) {
      const res = await call(on, headers);
      expect(res.status, JSON.stringify(headers).slice(0, 80)).toBe(200);
      const sent = TRACEPARENT.exec(String(res.upstream.traceparent));
      expect(sent, JSON.stringify(headers).slice(0, 80)).not.toBeNull();
      expect(sent![1]).not.toBe(t);
      expect(res.upstream.tracestate).toBeUndefined();
      const server = (await spansOf(sent![1]!)).find((x) => x.kind === SPAN_KIND.server)!;
      expect(server.parentSpanId).toBe('');
    }
    // A valid traceparent with an invalid tracestate: the trace continues, the tracestate is dropped.
    for (const tracestate of [`a=${'x'.repeat(600)}`, 'Bad=1', 'a=1,a=2', Array.from({ length: 40 }, (_, i) => `k${i}=v`).join(',')]) {
      const traceId = hex(32);
      const res = await call(on, { traceparent: `00-${traceId}-${s}-01`, tracestate });
      expect(res.status).toBe(200);
      expect(TRACEPARENT.exec(String(res.upstream.traceparent))?.[1]).toBe(traceId);
      expect(res.upstream.tracestate).toBeUndefined();
    }
  });

  it('with tracing off adds no traceparent, passes a client one through untouched, exports nothing and loads no SDK', async () => {
    const plain = await call(off, {});
    expect(plain.status).toBe(200);
    expect(plain.upstream.traceparent).toBeUndefined();
    const own = `00-${hex(32)}-${hex(16)}-01`;
    const passed = await call(off, { traceparent: own, tracestate: 'vendor=abc' });
    expect(passed.upstream.traceparent).toBe(own);
    expect(passed.upstream.tracestate).toBe('vendor=abc');
    // A drained gateway has flushed whatever it had to export: nothing came from this one.
    expect(await off.stop('SIGTERM')).toBe(0);
    expect(collector.spans.filter((s) => s.service === 'gw-disabled')).toEqual([]);
    expect(off.logs.some((l) => l.includes('tracing on'))).toBe(false);
    expect(on.logs.some((l) => l.includes('tracing on'))).toBe(true);

    // The gateway's whole module graph, imported and started with tracing off, loads no SDK
    // module (prom-client loads @opentelemetry/api itself, for exemplars, whatever tracing says).
    const script = `
      const { createRequire } = await import('node:module');
      const { loadGatewayConfig } = await import('./apps/gateway/src/env.ts');
      const { createGateway } = await import('./apps/gateway/src/server.ts');
      const gw = await createGateway(loadGatewayConfig({ ...process.env, GATEWAY_PORT: '0', LOG_LEVEL: 'silent', GATEWAY_SPOOL_DIR: ${JSON.stringify(mkdtempSync(path.join(tmpdir(), 'tg-otel-mod-')))} }));
      await gw.shutdown();
      const loaded = Object.keys(createRequire(import.meta.url).cache).filter((k) => k.includes('@opentelemetry/') && !k.includes('@opentelemetry/api/'));
      process.stdout.write(JSON.stringify(loaded));
      process.exit(0);
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: root,
      env: { ...process.env, REDIS_URL: testEnv().redisUrl, REDIS_PREFIX: ks.prefix },
    });
    expect(JSON.parse(stdout)).toEqual([]);
  });
});
