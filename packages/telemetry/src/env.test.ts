import { describe, expect, it } from 'vitest';
import { parseEnv } from '@tollgate/config';
import { telemetryEnv, tracingConfig } from './env';

const config = (env: Record<string, string>) => tracingConfig(parseEnv(telemetryEnv, env), 'tollgate-test');

describe('tracingConfig', () => {
  it('is off by default, and when disabled or exporting to none whatever else is set', () => {
    expect(config({})).toBeNull();
    expect(config({ OTEL_SERVICE_NAME: 'x', OTEL_TRACES_SAMPLER: 'always_on' })).toBeNull();
    expect(config({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' })).toBeNull();
    expect(config({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' })).toBeNull();
  });

  it('turns on with an endpoint, appending /v1/traces to the base one only', () => {
    expect(config({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toMatchObject({
      url: 'http://c:4318/v1/traces',
      protocol: 'http/protobuf',
      sampler: 'parentbased_always_on',
      ratio: 1,
      serviceName: 'tollgate-test',
    });
    expect(config({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/base/' })?.url).toBe('http://c:4318/base/v1/traces');
    expect(config({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://t:1/custom' })?.url).toBe(
      'https://t:1/custom',
    );
    expect(config({ OTEL_TRACES_EXPORTER: 'otlp' })?.url).toBe('http://localhost:4318/v1/traces');
  });

  it('reads the sampler, protocol, service name, resource attributes and batch settings', () => {
    const c = config({
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c/v1/traces',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.01',
      OTEL_SERVICE_NAME: 'edge',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod,team=api%20platform',
      OTEL_BSP_SCHEDULE_DELAY: '100',
      OTEL_BSP_MAX_QUEUE_SIZE: '100',
    });
    expect(c).toMatchObject({
      protocol: 'http/json',
      sampler: 'parentbased_traceidratio',
      ratio: 0.01,
      serviceName: 'edge',
      resourceAttributes: { 'deployment.environment': 'prod', team: 'api platform' },
      batch: { scheduledDelayMillis: 100, maxQueueSize: 100, maxExportBatchSize: 100, exportTimeoutMillis: 30_000 },
    });
  });

  it('names every bad variable', () => {
    const bad = {
      OTEL_SDK_DISABLED: 'maybe',
      OTEL_TRACES_EXPORTER: 'zipkin',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://x',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_TRACES_SAMPLER: 'jaeger_remote',
      OTEL_TRACES_SAMPLER_ARG: '1.5',
      OTEL_RESOURCE_ATTRIBUTES: 'novalue',
      OTEL_BSP_SCHEDULE_DELAY: '-1',
    };
    expect(() => parseEnv(telemetryEnv, bad)).toThrow(
      new RegExp(
        Object.keys(bad)
          .map((k) => `(?=[\\s\\S]*${k})`)
          .join(''),
      ),
    );
  });
});
