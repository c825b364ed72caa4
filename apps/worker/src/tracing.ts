import type { Link, Span } from '@opentelemetry/api';
import type { Logger } from '@tollgate/config';
import { parseTraceparent, type Tracing } from '@tollgate/telemetry';
import type { UsageBatch } from '@tollgate/usage';
import type { GroupResult } from './ingest/apply-batch';
import type { WorkerConfig } from './env';

/** Most gateway requests one batch-apply span links to (a group may hold 20,000 events). */
export const MAX_LINKS = 32;

/**
 * The worker's OpenTelemetry (ADR 0027): a span per group commit of usage batches, linked to the
 * gateway requests whose events carried a sampled trace context, a span per billing job, and a
 * client span per Stripe API call inside it. Null when the OTEL_* variables leave tracing off;
 * the SDK is then never imported.
 */
export type WorkerTracing = {
  tracing: Tracing;
  /** Wraps one group commit of usage batches. */
  applyGroup: (batches: readonly UsageBatch[], write: () => Promise<GroupResult>) => Promise<GroupResult>;
  /** Wraps one billing job; Stripe calls made inside it become its children. */
  job: <T>(name: string, run: () => Promise<T>) => Promise<T>;
  /** Turns a Stripe client's calls into client spans (from its `response` events). */
  traceStripe: (stripe: { on: (event: 'response', handler: (e: StripeResponseEvent) => void) => void }) => void;
};

/** What the Stripe SDK reports for each API call it made. */
export type StripeResponseEvent = {
  method?: string;
  path?: string;
  status?: number;
  request_start_time?: number;
  request_end_time?: number;
};

export async function startWorkerTracing(config: Pick<WorkerConfig, 'tracing'>, logger: Logger): Promise<WorkerTracing | null> {
  const settings = config.tracing;
  if (settings === null) return null;
  const { startTracing } = await import('@tollgate/telemetry/sdk');
  // Global: billing jobs use the active context, so Stripe calls made inside a job nest under it.
  const tracing = await startTracing(settings, {
    scope: '@tollgate/worker',
    global: true,
    onError: (message) => logger.warn({ err: message }, 'opentelemetry'),
  });
  logger.info({ url: settings.url, protocol: settings.protocol, sampler: settings.sampler }, 'tracing on: spans exported over OTLP/HTTP');
  const { tracer, api } = tracing;

  const fail = (span: Span, err: unknown) => {
    span.recordException(err as Error);
    span.setStatus({ code: api.SpanStatusCode.ERROR, message: (err as Error).message });
  };

  return {
    tracing,
    async applyGroup(batches, write) {
      const links: Link[] = [];
      let events = 0;
      for (const b of batches) {
        events += b.events.length;
        for (const e of b.events) {
          if (links.length >= MAX_LINKS || e.traceparent === undefined) continue;
          const parent = parseTraceparent(e.traceparent);
          if (parent) links.push({ context: tracing.remoteSpanContext(parent) });
        }
      }
      const span = tracer.startSpan('usage.apply', {
        kind: api.SpanKind.CONSUMER,
        links,
        attributes: {
          'messaging.system': 'bullmq',
          'messaging.destination.name': 'usage',
          'messaging.batch.message_count': batches.length,
          'tollgate.usage.events': events,
          'tollgate.usage.batch_ids': batches.map((b) => b.batchId).slice(0, 32),
        },
      });
      try {
        const res = await write();
        span.setAttributes({
          'tollgate.usage.applied': res.applied.filter(Boolean).length,
          'tollgate.usage.rollup_rows': res.rollupRows,
          'tollgate.usage.ledger_rows': res.ledgerRows,
          'tollgate.usage.parked': res.parked.length,
        });
        return res;
      } catch (err) {
        fail(span, err);
        throw err;
      } finally {
        span.end();
      }
    },
    job(name, run) {
      return tracer.startActiveSpan(name, { kind: api.SpanKind.CONSUMER, attributes: { 'messaging.system': 'bullmq' } }, async (span) => {
        try {
          return await run();
        } catch (err) {
          fail(span, err);
          throw err;
        } finally {
          span.end();
        }
      });
    },
    traceStripe(stripe) {
      stripe.on('response', (e) => {
        // Reported once the call is over: a span with the call's own start and end times, under
        // whatever span was active when it was made (the billing job's).
        const method = e.method ?? 'GET';
        const span = tracer.startSpan(`stripe ${method} ${e.path ?? ''}`.trim(), {
          kind: api.SpanKind.CLIENT,
          startTime: e.request_start_time,
          attributes: {
            'http.request.method': method,
            'url.path': e.path ?? '',
            'server.address': 'stripe',
            ...(e.status !== undefined ? { 'http.response.status_code': e.status } : {}),
          },
        });
        if (e.status !== undefined && e.status >= 400) span.setStatus({ code: api.SpanStatusCode.ERROR });
        span.end(e.request_end_time);
      });
    },
  };
}
