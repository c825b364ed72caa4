// What every app imports whether tracing is on or off: the OTEL_* variables and the W3C header
// rules. Nothing here loads OpenTelemetry; `@tollgate/telemetry/sdk` does, and only by `import()`.
export { telemetryEnv, tracingConfig, tracesUrl, parseResourceAttributes, SAMPLERS, type SamplerName, type TracingConfig } from './env';
export {
  parseTraceparent,
  parseTracestate,
  formatTraceparent,
  MAX_TRACEPARENT_LENGTH,
  MAX_TRACESTATE_LENGTH,
  MAX_TRACESTATE_MEMBERS,
  type TraceParent,
} from './traceparent';
export type { Tracing, StartTracingOptions } from './sdk';
