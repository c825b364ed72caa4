import type * as Api from '@opentelemetry/api';
import type * as Semconv from '@opentelemetry/semantic-conventions';
import type { TracingConfig } from './env';
import type { TraceParent } from './traceparent';

/**
 * A started tracer provider and what callers need around it. Everything OpenTelemetry is loaded
 * here with `import()`, and this module is itself only imported (dynamically) by an app whose
 * configuration turned tracing on: with tracing off no SDK module is ever loaded (bundlers keep
 * external `import()` calls lazy; a static import would be hoisted to the bundle's top).
 */
export type Tracing = {
  tracer: Api.Tracer;
  api: typeof Api;
  semconv: typeof Semconv;
  /** The context whose parent is a remote span described by a validated traceparent (and tracestate). */
  remoteContext(parent: TraceParent, tracestate: string | null): Api.Context;
  /** A remote span's context, for a span link. */
  remoteSpanContext(parent: TraceParent): Api.SpanContext;
  /** Exports what is buffered (tests, a job that must show up before the process idles). */
  forceFlush(): Promise<void>;
  /** Flushes and stops exporting; the process should call it before it exits. */
  shutdown(): Promise<void>;
};

export type StartTracingOptions = {
  /** Name of the tracer spans are created with (the app). */
  scope: string;
  /**
   * Also register as the process-wide provider with an AsyncLocalStorage context manager, so
   * libraries that trace through `@opentelemetry/api` (Next.js) and `startActiveSpan` work.
   * The gateway passes its contexts explicitly and leaves this off. No global propagator is
   * registered: incoming trace context is the gateway's decision alone (ADR 0027), and the
   * console's clients are browsers whose traceparent nobody vouches for.
   */
  global?: boolean;
  /** Errors the SDK reports (export failures): the app's logger. */
  onError?: (message: string) => void;
};

export async function startTracing(config: TracingConfig, opts: StartTracingOptions): Promise<Tracing> {
  const [api, core, resources, base, semconv, exporterModule] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/core'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/semantic-conventions'),
    config.protocol === 'http/json'
      ? import('@opentelemetry/exporter-trace-otlp-http')
      : import('@opentelemetry/exporter-trace-otlp-proto'),
  ]);
  if (opts.onError) {
    const report = opts.onError;
    // Export failures land here instead of the SDK's console logging.
    core.setGlobalErrorHandler((err) => report(err instanceof Error ? err.message : String(err)));
  }
  const resource = resources.resourceFromAttributes({
    ...config.resourceAttributes,
    [semconv.ATTR_SERVICE_NAME]: config.serviceName,
  });
  const exporter = new exporterModule.OTLPTraceExporter({ url: config.url });
  const processor = new base.BatchSpanProcessor(exporter, config.batch);
  const provider = new base.BasicTracerProvider({
    resource,
    sampler: buildSampler(base, config),
    spanProcessors: [processor],
  });
  if (opts.global) {
    const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks');
    api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    api.trace.setGlobalTracerProvider(provider);
  }
  const tracer = provider.getTracer(opts.scope);
  const spanContext = (p: TraceParent, tracestate: string | null): Api.SpanContext => ({
    traceId: p.traceId,
    spanId: p.spanId,
    traceFlags: p.flags & api.TraceFlags.SAMPLED,
    isRemote: true,
    ...(tracestate ? { traceState: new core.TraceState(tracestate) } : {}),
  });
  return {
    tracer,
    api,
    semconv,
    remoteContext: (p, tracestate) => api.trace.setSpanContext(api.ROOT_CONTEXT, spanContext(p, tracestate)),
    remoteSpanContext: (p) => spanContext(p, null),
    forceFlush: () => provider.forceFlush(),
    shutdown: async () => {
      await provider.shutdown();
      if (opts.global) {
        api.trace.disable();
        api.context.disable();
      }
    },
  };
}

function buildSampler(base: typeof import('@opentelemetry/sdk-trace-base'), config: TracingConfig) {
  const ratio = new base.TraceIdRatioBasedSampler(config.ratio);
  switch (config.sampler) {
    case 'always_on':
      return new base.AlwaysOnSampler();
    case 'always_off':
      return new base.AlwaysOffSampler();
    case 'traceidratio':
      return ratio;
    case 'parentbased_always_off':
      return new base.ParentBasedSampler({ root: new base.AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new base.ParentBasedSampler({ root: ratio });
    case 'parentbased_always_on':
      return new base.ParentBasedSampler({ root: new base.AlwaysOnSampler() });
  }
}
