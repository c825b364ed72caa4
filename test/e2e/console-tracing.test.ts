// The console with OpenTelemetry on (ADR 0027): `next start` with the OTEL_* variables exports
// Next.js's own request spans through instrumentation.ts to an OTLP collector stand-in.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testEnv, uniquePrefix } from '../harness/index';
import { SPAN_KIND, startOtlpCollector, type OtlpCollector } from '../harness/otlp-collector';
import { ensureConsoleBuild, startConsole, type Child } from './platform';

let collector: OtlpCollector;
let app: Child & { base: string };

beforeAll(async () => {
  collector = await startOtlpCollector();
  await ensureConsoleBuild();
  const env = testEnv();
  app = await startConsole({
    DATABASE_URL: env.databaseUrl,
    REDIS_URL: env.redisUrl,
    REDIS_PREFIX: uniquePrefix('cotel'),
    SESSION_SECRET: randomBytes(24).toString('hex'),
    OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '50',
  });
}, 900_000);

afterAll(async () => {
  await app?.stop();
  await collector?.close();
});

describe('console tracing (OpenTelemetry)', () => {
  it("exports a server span for a page request, in a trace of its own whatever the browser's traceparent says", async () => {
    const clientTrace = randomBytes(16).toString('hex');
    const res = await fetch(`${app.base}/login?otel=1`, {
      headers: { traceparent: `00-${clientTrace}-${randomBytes(8).toString('hex')}-01` },
    });
    expect(res.status).toBe(200);
    const spans = await collector.waitForSpans(
      (all) =>
        all.some(
          (s) =>
            s.service === 'tollgate-console' && s.kind === SPAN_KIND.server && String(s.attributes['http.target'] ?? '').includes('otel=1'),
        ),
      'the console server span of GET /login?otel=1',
    );
    const server = spans.find(
      (s) => s.service === 'tollgate-console' && s.kind === SPAN_KIND.server && String(s.attributes['http.target']).includes('otel=1'),
    )!;
    expect(server.name).toMatch(/^GET\b/);
    expect(server.attributes).toMatchObject({ 'http.method': 'GET', 'next.span_type': 'BaseServer.handleRequest' });
    expect(server.attributes['http.status_code']).toBe(200);
    expect(server.parentSpanId).toBe('');
    expect(server.traceId).not.toBe(clientTrace);
    expect(collector.spans.some((s) => s.traceId === clientTrace)).toBe(false);
  });
});
