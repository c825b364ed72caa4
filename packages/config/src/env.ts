import { z } from 'zod';

export class EnvError extends Error {
  constructor(public readonly issues: string[]) {
    super(`invalid configuration:\n${issues.map((i) => `  - ${i}`).join('\n')}`);
    this.name = 'EnvError';
  }
}

/** 'true'/'1'/'yes' → true, 'false'/'0'/'no'/'' → false. */
export const booleanFromEnv = (fallback: boolean) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return fallback;
      if (/^(true|1|yes|on)$/i.test(v)) return true;
      if (/^(false|0|no|off)$/i.test(v)) return false;
      ctx.addIssue({ code: 'custom', message: `expected true or false, got ${JSON.stringify(v)}` });
      return z.NEVER;
    });

/** Settings every service shares. */
export const commonEnv = {
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  /** Namespace of every Redis key and channel (tests use one per run). */
  REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,64}$/)
    .default('tg'),
};

/** The camelCase form of `commonEnv`, which every app's `load<App>Config` starts from. */
export function commonConfig(e: z.infer<z.ZodObject<typeof commonEnv>>) {
  return { nodeEnv: e.NODE_ENV, logLevel: e.LOG_LEVEL, redisUrl: e.REDIS_URL, redisPrefix: e.REDIS_PREFIX };
}

/**
 * Parses the environment once at boot. Services call this in their entry point only and pass
 * the result down; handlers never read process.env.
 */
export function parseEnv<S extends z.ZodRawShape>(
  shape: S,
  env: Record<string, string | undefined> = process.env,
): z.infer<z.ZodObject<S>> {
  const res = z.object(shape).safeParse(env);
  if (!res.success) {
    throw new EnvError(res.error.issues.map((i) => `${i.path.join('.') || '(env)'}: ${i.message}`));
  }
  return res.data;
}

/**
 * An entry point's first line: `load<App>Config(process.env)`, or on bad configuration one clear
 * message on stderr (every bad variable named, no stack trace) and `exit(code)`.
 */
export function loadConfigOrExit<T>(
  service: string,
  load: (env: Record<string, string | undefined>) => T,
  opts: { env?: Record<string, string | undefined>; exitCode?: number } = {},
): T {
  try {
    return load(opts.env ?? process.env);
  } catch (err) {
    if (!(err instanceof EnvError)) throw err;
    process.stderr.write(`${service}: ${err.message}\n`);
    process.exit(opts.exitCode ?? 1);
  }
}
