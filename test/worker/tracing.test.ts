// OpenTelemetry in a real worker process (ADR 0027): what an OTLP collector receives over the
// default protocol (http/protobuf) when usage batches are applied and metered usage reaches Stripe.
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrismaClient, type Db } from '@tollgate/db';
import { QUEUES } from '@tollgate/policy';
import { USAGE_JOB_NAME } from '@tollgate/usage';
import { startStripeStandIn, type StripeStandIn } from '@tollgate/billing/testing';
import { cloneRunDatabase, testEnv, testKeyspace, testRedis } from '../harness';
import { SPAN_KIND, startOtlpCollector, type OtlpCollector } from '../harness/otlp-collector';
import { createFixture, makeBatch, makeEvent } from './fixtures';
import { spawnWorker, type WorkerProcess } from './worker-process';

const HOUR = 3_600_000;
const hex = (n: number) => Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join('');

describe('worker tracing (OpenTelemetry)', () => {
  const keyspace = testKeyspace('wotel');
  const redis = testRedis();
  const queue = new Queue(QUEUES.usage, { connection: redis, prefix: keyspace.bullPrefix });
  let database: { url: string; drop: () => Promise<void> };
  let db: Db;
  let stripe: StripeStandIn;
  let collector: OtlpCollector;
  let worker: WorkerProcess | null = null;

  beforeAll(async () => {
    // A database of its own: the worker's schedules run over every row.
    database = await cloneRunDatabase('wotel');
    db = createPrismaClient(database.url, { max: 2 });
    stripe = await startStripeStandIn();
    collector = await startOtlpCollector();
  });
  afterAll(async () => {
    if (worker && worker.child.exitCode === null) worker.child.kill('SIGKILL');
    await queue.close();
    redis.disconnect();
    await collector.close();
    await stripe.stop();
    await db.$disconnect();
    await database.drop();
  });

  it('exports a batch-apply span linked to the traced gateway request, and Stripe calls under their billing job', async () => {
    const f = await createFixture(db, {
      stripe: { customerId: 'cus_otel', subscriptionId: `sub_stripe_otel_${Date.now()}`, meterId: 'mtr_otel' },
    });
    const traceId = hex(32);
    const spanId = hex(16);
    // A closed hour, so the meter reporter sends it to Stripe while the test runs.
    const ts = Math.floor(Date.now() / HOUR) * HOUR - HOUR + 1000;
    const batch = makeBatch([
      makeEvent(f, { ts, traceparent: `00-${traceId}-${spanId}-01` }),
      makeEvent(f, { ts }),
      // Whatever the event says, a malformed trace context is no link.
      makeEvent(f, { ts, traceparent: 'ff-not-a-trace' }),
    ]);
    await queue.add(USAGE_JOB_NAME, batch, { jobId: batch.batchId });

    worker = await spawnWorker({
      DATABASE_URL: database.url,
      REDIS_URL: testEnv().redisUrl,
      REDIS_PREFIX: keyspace.prefix,
      STRIPE_SECRET_KEY: stripe.apiKey,
      STRIPE_API_HOST: '127.0.0.1',
      STRIPE_API_PORT: String(stripe.port),
      STRIPE_API_PROTOCOL: 'http',
      METER_SETTLE_MS: '0',
      METER_REPORT_EVERY_MS: '200',
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint,
      OTEL_SERVICE_NAME: 'worker-traced',
      OTEL_BSP_SCHEDULE_DELAY: '50',
    });

    const [apply] = (await collector.waitForSpans((all) => all.some((s) => s.name === 'usage.apply'), 'usage.apply span')).filter(
      (s) => s.name === 'usage.apply',
    );
    expect(apply!.service).toBe('worker-traced');
    expect(apply!.kind).toBe(SPAN_KIND.consumer);
    expect(apply!.links).toEqual([{ traceId, spanId }]);
    expect(apply!.attributes).toMatchObject({
      'tollgate.usage.events': 3,
      'tollgate.usage.applied': 1,
      'messaging.batch.message_count': 1,
    });

    const isCall = (s: { name: string }) => s.name === 'stripe POST /v1/billing/meter_events';
    // The call ends (and may be exported) before the job around it does.
    const spans = await collector.waitForSpans(
      (all) => all.some((c) => isCall(c) && c.parentSpanId !== '' && all.some((j) => j.spanId === c.parentSpanId)),
      'a Stripe meter event call and its job',
    );
    const call = spans.find((c) => isCall(c) && spans.some((j) => j.spanId === c.parentSpanId))!;
    const job = spans.find((s) => s.spanId === call.parentSpanId);
    // The meter reporter sends it, or reconciliation does when it runs first (it reports closed hours too).
    expect(job?.name).toMatch(/^billing\.(meter-report|reconcile)\.v1$/);
    expect(call.traceId).toBe(job!.traceId);
    expect(call.kind).toBe(SPAN_KIND.client);
    expect(call.attributes['http.response.status_code']).toBe(200);
    expect(call.startNs >= job!.startNs && call.endNs <= job!.endNs).toBe(true);
    // Sent as protobuf, the OTLP default.
    expect(collector.exports.protobuf).toBeGreaterThan(0);
    expect(collector.exports.json).toBe(0);

    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
  });
});
