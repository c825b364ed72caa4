import { z } from 'zod';

/**
 * The standard OpenTelemetry SDK variables Tollgate reads, as a zod shape each app spreads into
 * its own environment schema (so a bad value stops the app at boot, naming the variable).
 * https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/
 *
 * Tracing is off unless an OTLP endpoint is configured (or `OTEL_TRACES_EXPORTER=otlp` says to use
 * the default one); `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turns it off whatever
 * else is set. Off means the SDK is never loaded: the apps import it only when this says on.
 * OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION and the certificate variables are read by
 * the OTLP exporter itself.
 */
export const SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;
export type SamplerName = (typeof SAMPLERS)[number];

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

const httpUrl = optionalString.refine((v) => v === undefined || /^https?:\/\/[^\s]+$/i.test(v), {
  message: 'expected an http:// or https:// URL',
});

const protocol = optionalString.refine((v) => v === undefined || v === 'http/protobuf' || v === 'http/json', {
  message: 'expected http/protobuf or http/json (gRPC export is not supported)',
});

const count = (fallback: number, max: number) =>
  optionalString.transform((v, ctx) => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (Number.isInteger(n) && n >= 1 && n <= max) return n;
    ctx.addIssue({ code: 'custom', message: `expected a whole number from 1 to ${max}` });
    return z.NEVER;
  });

export const telemetryEnv = {
  OTEL_SDK_DISABLED: optionalString.refine((v) => v === undefined || /^(true|false)$/i.test(v), {
    message: 'expected true or false',
  }),
  /** `otlp` or `none` (other exporters are not shipped). */
  OTEL_TRACES_EXPORTER: optionalString.refine(
    (v) => v === undefined || v.split(',').every((e) => ['otlp', 'none'].includes(e.trim().toLowerCase())),
    { message: 'expected otlp or none' },
  ),
  OTEL_EXPORTER_OTLP_ENDPOINT: httpUrl,
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: httpUrl,
  OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: protocol,
  OTEL_SERVICE_NAME: optionalString.refine((v) => v === undefined || v.length <= 255, { message: 'at most 255 characters' }),
  OTEL_RESOURCE_ATTRIBUTES: z
    .string()
    .optional()
    .transform((v, ctx) => {
      try {
        return parseResourceAttributes(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    }),
  OTEL_TRACES_SAMPLER: optionalString.refine((v) => v === undefined || (SAMPLERS as readonly string[]).includes(v.toLowerCase()), {
    message: `expected one of ${SAMPLERS.join(', ')}`,
  }),
  OTEL_TRACES_SAMPLER_ARG: optionalString.refine((v) => v === undefined || (/^\d*\.?\d+$/.test(v) && Number(v) <= 1), {
    message: 'expected a probability between 0 and 1',
  }),
  /** Batch span processor: export every this many ms, hold at most this many spans, send at most this many at once. */
  OTEL_BSP_SCHEDULE_DELAY: count(5_000, 600_000),
  OTEL_BSP_MAX_QUEUE_SIZE: count(2_048, 1_000_000),
  OTEL_BSP_MAX_EXPORT_BATCH_SIZE: count(512, 1_000_000),
  OTEL_BSP_EXPORT_TIMEOUT: count(30_000, 600_000),
};

type TelemetryEnv = z.infer<z.ZodObject<typeof telemetryEnv>>;

/** What the SDK is started with; null (from `tracingConfig`) = tracing off. */
export type TracingConfig = {
  serviceName: string;
  /** Full URL spans are POSTed to. */
  url: string;
  protocol: 'http/protobuf' | 'http/json';
  sampler: SamplerName;
  /** Ratio for the `*traceidratio` samplers (0..1). */
  ratio: number;
  /** OTEL_RESOURCE_ATTRIBUTES, decoded. */
  resourceAttributes: Record<string, string>;
  batch: { scheduledDelayMillis: number; maxQueueSize: number; maxExportBatchSize: number; exportTimeoutMillis: number };
};

const DEFAULT_ENDPOINT = 'http://localhost:4318';

/** The spec's rule: a signal-specific endpoint is used as is; the base one gets `/v1/traces`. */
export function tracesUrl(base: string | undefined, specific: string | undefined): string {
  if (specific) return specific;
  const b = base ?? DEFAULT_ENDPOINT;
  return `${b}${b.endsWith('/') ? '' : '/'}v1/traces`;
}

/** `key1=value1,key2=value2` with percent-encoded values (W3C Baggage octets); bad members are an error. */
export function parseResourceAttributes(raw: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!raw) return out;
  for (const member of raw.split(',')) {
    if (member.trim() === '') continue;
    const eq = member.indexOf('=');
    const key = eq > 0 ? member.slice(0, eq).trim() : '';
    if (!key || key.length > 255) throw new Error(`not key=value: ${JSON.stringify(member.slice(0, 64))}`);
    let value: string;
    try {
      value = decodeURIComponent(member.slice(eq + 1).trim());
    } catch {
      throw new Error(`bad percent-encoding in ${JSON.stringify(key)}`);
    }
    out[key] = value;
  }
  return out;
}

/**
 * Whether tracing is on and with what, from the parsed variables; null = off (the default).
 * `defaultServiceName` is the app's (`tollgate-gateway`, ...), overridden by OTEL_SERVICE_NAME.
 */
export function tracingConfig(env: TelemetryEnv, defaultServiceName: string): TracingConfig | null {
  if (env.OTEL_SDK_DISABLED?.toLowerCase() === 'true') return null;
  const exporters = env.OTEL_TRACES_EXPORTER?.split(',').map((e) => e.trim().toLowerCase()) ?? [];
  if (exporters.includes('none')) return null;
  const endpointSet = env.OTEL_EXPORTER_OTLP_ENDPOINT !== undefined || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT !== undefined;
  if (!endpointSet && !exporters.includes('otlp')) return null;
  const sampler = (env.OTEL_TRACES_SAMPLER?.toLowerCase() ?? 'parentbased_always_on') as SamplerName;
  return {
    serviceName: env.OTEL_SERVICE_NAME ?? defaultServiceName,
    url: tracesUrl(env.OTEL_EXPORTER_OTLP_ENDPOINT, env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT),
    protocol: (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf') as TracingConfig['protocol'],
    sampler,
    ratio: env.OTEL_TRACES_SAMPLER_ARG === undefined ? 1 : Number(env.OTEL_TRACES_SAMPLER_ARG),
    resourceAttributes: env.OTEL_RESOURCE_ATTRIBUTES,
    batch: {
      scheduledDelayMillis: env.OTEL_BSP_SCHEDULE_DELAY,
      maxQueueSize: env.OTEL_BSP_MAX_QUEUE_SIZE,
      maxExportBatchSize: Math.min(env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE, env.OTEL_BSP_MAX_QUEUE_SIZE),
      exportTimeoutMillis: env.OTEL_BSP_EXPORT_TIMEOUT,
    },
  };
}
