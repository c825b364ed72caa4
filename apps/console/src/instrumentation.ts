/**
 * Runs once when the server starts: parses the environment and opens the shared clients, so bad
 * config fails the start, not the first request; then, only when the OTEL_* variables turn it on,
 * starts OpenTelemetry (ADR 0027) as the process-wide tracer provider, so Next.js's own request
 * and render spans are exported over OTLP/HTTP. With tracing off the SDK is never imported.
 */
export async function register() {
  if (process.env.NEXT_RUNTIME === 'nodejs') {
    const { getRuntime } = await import('./server/shared/runtime');
    const { config, log } = getRuntime();
    if (config.tracing) {
      const { startTracing } = await import('@tollgate/telemetry/sdk');
      await startTracing(config.tracing, {
        scope: '@tollgate/console',
        global: true,
        onError: (message) => log.warn({ err: message }, 'opentelemetry'),
      });
      log.info({ url: config.tracing.url, protocol: config.tracing.protocol }, 'tracing on: spans exported over OTLP/HTTP');
    }
  }
}
