import { z } from 'zod';

// The CLI ships on its own (no pino, no @tollgate/config): its two variables are parsed here, once
// per run, and then read like `--url`/`--token`, which win over them.
const optional = z
  .string()
  .optional()
  .transform((v) => v || undefined);

export const CliEnv = {
  /** The console's address, e.g. https://console.example.com (`--url` wins). */
  TOLLGATE_URL: optional,
  /** An admin API token, `tgat_…` (`--token` wins). */
  TOLLGATE_TOKEN: optional,
};

export type CliConfig = { url: string | undefined; token: string | undefined };

export function loadCliConfig(env: Record<string, string | undefined>): CliConfig {
  const e = z.object(CliEnv).parse(env);
  return { url: e.TOLLGATE_URL, token: e.TOLLGATE_TOKEN };
}
