import { z } from 'zod';
import { booleanFromEnv, cidrList, commonEnv, createLogger, parseEnv } from '@tollgate/config';
import { telemetryEnv, tracingConfig, type TracingConfig } from '@tollgate/telemetry';

const DEV_SESSION_SECRET = 'tollgate-dev-session-secret-do-not-use-in-production';

export const ConsoleEnv = {
  ...commonEnv,
  /** OpenTelemetry (ADR 0027): off unless an OTLP endpoint is set. */
  ...telemetryEnv,
  DATABASE_URL: z.string().url().default('postgresql://postgres@127.0.0.1:5432/tollgate'),
  /** Signs session cookies (HS256); at least 32 characters. */
  SESSION_SECRET: z.string().min(32).optional(),
  CONSOLE_URL: z.string().url().default('http://localhost:3000'),
  CONSOLE_PORT: z.coerce.number().int().min(1).max(65535).default(3000),
  /** Address the console's server (src/main.ts) binds. */
  CONSOLE_HOST: z.string().min(1).default('0.0.0.0'),
  GATEWAY_BASE_DOMAIN: z
    .string()
    .regex(/^[a-z0-9.-]+$/i)
    .default('localhost'),
  GATEWAY_PORT: z.coerce.number().int().min(1).max(65535).default(8080),
  /** Overrides the derived `{tenant}` URL pattern, e.g. `https://{tenant}.api.example.com`. */
  GATEWAY_PUBLIC_URL: z.string().includes('{tenant}').optional(),
  /**
   * Read X-Forwarded-For for client IPs (rate limits, audit) because the console sits behind a
   * proxy. Off: the socket address only, whatever a client sends.
   */
  TRUST_PROXY: booleanFromEnv(false),
  /**
   * With TRUST_PROXY, the proxies' addresses/CIDRs: the client is the right-most X-Forwarded-For
   * entry that isn't one of them. Empty: the direct peer is the one proxy (its entry counts).
   */
  CONSOLE_TRUSTED_PROXIES: cidrList,
  /** Bearer token Prometheus sends for /metrics; unset, /metrics answers 404. */
  CONSOLE_METRICS_TOKEN: z.string().min(16, 'at least 16 characters').optional(),
};

export type ConsoleConfig = {
  nodeEnv: 'development' | 'test' | 'production';
  logLevel: string;
  databaseUrl: string;
  redisUrl: string;
  redisPrefix: string;
  sessionSecret: string;
  consoleUrl: string;
  consolePort: number;
  consoleHost: string;
  gatewayUrlPattern: string;
  trustProxy: boolean;
  trustedProxies: string[];
  metricsToken: string | null;
  /** OpenTelemetry tracing (started by instrumentation.ts); null = off. */
  tracing: TracingConfig | null;
};

/** Parses the console's environment once; throws EnvError naming every bad variable. */
export function loadConsoleConfig(env: Record<string, string | undefined> = process.env): ConsoleConfig {
  const e = parseEnv(ConsoleEnv, env);
  let sessionSecret = e.SESSION_SECRET;
  if (!sessionSecret) {
    if (e.NODE_ENV === 'production') {
      throw new Error('invalid configuration:\n  - SESSION_SECRET: required in production (at least 32 characters)');
    }
    createLogger('console', e.LOG_LEVEL).warn(
      'SESSION_SECRET is not set: using a built-in development secret. Sessions can be forged by anyone who reads this source. Set SESSION_SECRET before exposing the console.',
    );
    sessionSecret = DEV_SESSION_SECRET;
  }
  const gatewayUrlPattern =
    e.GATEWAY_PUBLIC_URL ?? `http://{tenant}.${e.GATEWAY_BASE_DOMAIN}${e.GATEWAY_PORT === 80 ? '' : `:${e.GATEWAY_PORT}`}`;
  return {
    nodeEnv: e.NODE_ENV,
    logLevel: e.LOG_LEVEL,
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    redisPrefix: e.REDIS_PREFIX,
    sessionSecret,
    consoleUrl: e.CONSOLE_URL.replace(/\/$/, ''),
    consolePort: e.CONSOLE_PORT,
    consoleHost: e.CONSOLE_HOST,
    gatewayUrlPattern,
    trustProxy: e.TRUST_PROXY,
    trustedProxies: e.CONSOLE_TRUSTED_PROXIES,
    metricsToken: e.CONSOLE_METRICS_TOKEN ?? null,
    tracing: tracingConfig(e, 'tollgate-console'),
  };
}

export function gatewayUrlFor(config: Pick<ConsoleConfig, 'gatewayUrlPattern'>, tenantSlug: string): string {
  return config.gatewayUrlPattern.replace('{tenant}', tenantSlug);
}
