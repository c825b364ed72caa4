import { z } from 'zod';
import { commonEnv, parseEnv } from '@tollgate/config';

const Port = z.coerce.number().int().min(0).max(65535);

export const DemoUpstreamEnv = {
  LOG_LEVEL: commonEnv.LOG_LEVEL,
  DEMO_UPSTREAM_PORT: Port.optional(),
  // `npm start`'s supervisor hands every app its port as PORT.
  PORT: Port.optional(),
  DEMO_UPSTREAM_HOST: z.string().min(1).default('127.0.0.1'),
  DEMO_UPSTREAM_MAX_DELAY_MS: z.coerce.number().int().min(0).max(600_000).default(10_000),
};

export type DemoUpstreamConfig = { logLevel: string; port: number; host: string; maxDelayMs: number };

/** Parses the demo upstream's environment once, at boot; throws EnvError naming every bad variable. */
export function loadDemoUpstreamConfig(env: Record<string, string | undefined> = process.env): DemoUpstreamConfig {
  const e = parseEnv(DemoUpstreamEnv, env);
  return {
    logLevel: e.LOG_LEVEL,
    port: e.DEMO_UPSTREAM_PORT ?? e.PORT ?? 4000,
    host: e.DEMO_UPSTREAM_HOST,
    maxDelayMs: e.DEMO_UPSTREAM_MAX_DELAY_MS,
  };
}
