// What a route may be created or updated with, header transforms included.
import { z } from 'zod';
import { isGatewayOwnedHeader } from '@tollgate/policy';
import { SafeText } from '../shared/validation';
import { ScopesInput, SharedRateLimitInput } from './edge-fields';

const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;
const RoutePath = z
  .string({ error: 'must be text' })
  .trim()
  .max(256, 'must be at most 256 characters')
  .regex(
    /^\/(?:(?:[A-Za-z0-9._~-]+|:[A-Za-z_][A-Za-z0-9_]*)(?:\/(?:[A-Za-z0-9._~-]+|:[A-Za-z_][A-Za-z0-9_]*))*)?(?:\/\*)?\/?$|^\/\*$/,
    'must start with / and use literal segments, :params and an optional trailing /*',
  );

const RouteRateLimit = z.object({
  limit: z.number({ error: 'must be a number' }).int().min(1).max(1_000_000),
  windowSeconds: z.number({ error: 'must be a number' }).int().min(1).max(86_400),
  algorithm: z.enum(['sliding_window', 'gcra', 'token_bucket', 'fixed_window']).default('sliding_window'),
});

const HeaderName = z
  .string({ error: 'must be text' })
  .trim()
  .min(1, 'is required')
  .max(64, 'must be at most 64 characters')
  .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be a header name (letters, digits, - and a few symbols)')
  .refine((n) => !isGatewayOwnedHeader(n), 'is set by the gateway and cannot be changed');
// Visible ASCII plus space and tab: no CR/LF, so a value can't smuggle another header.
const HeaderValue = z
  .string({ error: 'must be text' })
  .max(1024, 'must be at most 1024 characters')
  .regex(/^[\x20-\x7e\t]*$/, 'must be printable ASCII without line breaks');
const HeaderOps = z
  .object({
    set: z
      .record(HeaderName, HeaderValue, {
        // Name the bad header and why, instead of zod's generic "invalid key".
        error: (iss) => {
          const inner = (iss as { issues?: Array<{ message?: string }> }).issues?.[0]?.message;
          return iss.code === 'invalid_key' && inner ? `${String(iss.input).slice(0, 64)} ${inner}` : 'must map header names to values';
        },
      })
      .refine((r) => Object.keys(r).length <= 20, 'at most 20 headers')
      .optional(),
    remove: z.array(HeaderName, { error: 'must be a list' }).max(20, 'at most 20 headers').optional(),
  })
  .strict();
export const HeaderTransformInput = z.object({ requestHeaders: HeaderOps.optional(), responseHeaders: HeaderOps.optional() }).strict();

const RouteFields = {
  name: SafeText(100).default(''),
  methods: z
    .array(z.enum(HTTP_METHODS, { error: `must be one of ${HTTP_METHODS.join(', ')}` }), { error: 'must be a list' })
    .max(7)
    .default([]),
  path: RoutePath,
  requestTimeoutMs: z.number({ error: 'must be a number' }).int().min(100).max(600_000).nullable().default(null),
  cacheTtlSeconds: z.number({ error: 'must be a number' }).int().min(0).max(86_400).default(0),
  rateLimit: RouteRateLimit.nullable().default(null),
  transform: HeaderTransformInput.nullable().default(null),
  /** Scopes a key must all hold to call this route (403 insufficient_scope otherwise). */
  requiredScopes: ScopesInput.default([]),
  /** One limit shared by every caller of this route, protecting its upstream; null = none. */
  sharedRateLimit: SharedRateLimitInput.nullable().default(null),
};
export const CreateRouteInput = z.object(RouteFields).strict();
export const UpdateRouteInput = z
  .object({
    name: SafeText(100),
    methods: z.array(z.enum(HTTP_METHODS)).max(7),
    path: RoutePath,
    requestTimeoutMs: z.number().int().min(100).max(600_000).nullable(),
    cacheTtlSeconds: z.number().int().min(0).max(86_400),
    rateLimit: RouteRateLimit.nullable(),
    transform: HeaderTransformInput.nullable(),
    requiredScopes: ScopesInput,
    sharedRateLimit: SharedRateLimitInput.nullable(),
  })
  .partial()
  .strict();
