// OAuth token introspection settings and deprecation dates of an API (ADR 0028): input schemas,
// the endpoint's SSRF check, and keeping the client secret out of every answer.
import { z } from 'zod';
import { ServiceError } from '../shared/context';
import { checkUpstreamUrl } from './ssrf';
import type { ApiServiceOptions } from './api-upstream-checks';

const Printable = (max: number) =>
  z
    .string({ error: 'must be text' })
    .min(1, 'is required')
    .max(max, `must be at most ${max} characters`)
    .regex(/^[\x20-\x7e]+$/, 'must be printable ASCII');

/** Same shape as the policy's ConsumerClaim, with a message a form can show. */
export const ClaimName = z
  .string({ error: 'must be text' })
  .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'must be a claim name (letters, digits, _ . : -)');

export const IntrospectionConfig = z
  .object({
    endpoint: z.string({ error: 'must be text' }).trim().max(2048).url('must be a URL'),
    clientId: Printable(256),
    /** Write-only: never returned; omitted on update = keep the stored one. */
    clientSecret: Printable(1024).optional(),
    cacheMaxTtlSeconds: z.number({ error: 'must be a number of seconds' }).int().min(0).max(3600, 'must be at most an hour').default(60),
    requiredScopes: z
      .array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/, 'must be a scope token'))
      .max(32)
      .default([]),
    /** `client_id`, `sub` or another member: set, every caller must be bound to a consumer. */
    consumerClaim: ClaimName.nullable().default(null),
  })
  .strict();
export type IntrospectionConfig = z.output<typeof IntrospectionConfig>;

const When = z.coerce.date({ error: 'must be a date' }).nullable().optional();
export const LifecycleFields = {
  /** `Deprecation` header (RFC 9745) from publication on. */
  deprecatedAt: When,
  /** `Sunset` header (RFC 8594). */
  sunsetAt: When,
  deprecationLink: z
    .string({ error: 'must be text' })
    .trim()
    .max(2048)
    .url('must be a URL')
    .regex(/^[^<>\s]+$/, 'must be a plain URL')
    .nullable()
    .optional(),
};

/**
 * The endpoint is called by the gateway, so it gets the same SSRF rules as a JWKS URL; a missing
 * secret is taken from the stored settings (the admin API never hands it out to be sent back).
 */
export async function checkIntrospection(
  config: IntrospectionConfig | null | undefined,
  stored: unknown,
  allow: boolean,
  opts: ApiServiceOptions,
): Promise<(IntrospectionConfig & { clientSecret: string }) | null | undefined> {
  if (config === null || config === undefined) return config;
  const res = await checkUpstreamUrl(config.endpoint, { allowPrivate: allow, resolve: opts.resolve });
  if (!res.ok)
    throw new ServiceError('unprocessable', `introspection endpoint ${res.reason}`, { 'introspectionConfig.endpoint': res.reason });
  const clientSecret = config.clientSecret ?? (stored as { clientSecret?: string } | null)?.clientSecret;
  if (!clientSecret)
    throw new ServiceError('unprocessable', 'the introspection client secret is required', {
      'introspectionConfig.clientSecret': 'is required',
    });
  return { ...config, endpoint: res.url, clientSecret };
}

/** An API as the admin API and console show it: the introspection secret replaced by whether one is set. */
export function withoutSecrets<T extends { introspectionConfig?: unknown }>(api: T): T {
  const c = api.introspectionConfig as { clientSecret?: string } | null | undefined;
  if (!c || typeof c !== 'object') return api;
  const { clientSecret, ...rest } = c;
  return { ...api, introspectionConfig: { ...rest, clientSecretSet: Boolean(clientSecret) } };
}
