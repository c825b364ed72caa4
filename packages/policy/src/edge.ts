import { z } from 'zod';
import { parseCidr } from './cidr';

/**
 * Edge policies of issue 19 (ADR 0025): CORS, IP allow/deny lists, key scopes, the circuit
 * breaker. Every one is optional in the snapshot: absent (or null) = off, and a gateway compiles
 * no stage for it.
 */

/** Longest list a setting accepts: past it a list is a mistake (or an attack on the console), not a policy. */
export const MAX_IP_RULES = 5000;
export const MAX_CORS_ORIGINS = 200;
export const MAX_SCOPES = 64;

const Token = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/, 'must be an HTTP token');
const Method = z.string().regex(/^[A-Z]{1,16}$/, 'must be an upper-case HTTP method');

/** `scheme://host[:port]`, as browsers serialise an Origin: lower-case, no path, no trailing slash. */
export const CORS_ORIGIN =
  /^https?:\/\/(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?)*)(:[0-9]{1,5})?$/;

export const CorsPolicy = z
  .object({
    /** Exact origins, or `["*"]` for any. */
    origins: z
      .array(z.string().max(300))
      .min(1)
      .max(MAX_CORS_ORIGINS)
      .refine((list) => list.every((o) => o === '*' || CORS_ORIGIN.test(o)), {
        message: 'each origin must be "*" or scheme://host[:port] in lower case, without a path',
      })
      .refine((list) => !list.includes('*') || list.length === 1, { message: '"*" must be the only origin' }),
    /** Methods a preflight may ask for; empty = whatever the route allows. */
    methods: z.array(Method).max(32).default([]),
    /** Request headers a preflight may ask for (case-insensitive); `*` = any (not with credentials). */
    headers: z.array(Token).max(100).default([]),
    /** Response headers browsers may read beyond the safelisted ones. */
    exposedHeaders: z.array(Token).max(100).default([]),
    credentials: z.boolean().default(false),
    /** How long a browser may cache a preflight's answer. */
    maxAgeSeconds: z.number().int().min(0).max(86_400).default(600),
  })
  .superRefine((c, ctx) => {
    // Browsers refuse `*` with credentials; a gateway echoing any origin instead would hand every
    // site the user's cookies. Refused when it is configured, not discovered in production.
    if (c.credentials && c.origins.includes('*'))
      ctx.addIssue({ code: 'custom', path: ['origins'], message: 'origins "*" cannot be combined with credentials: list the origins' });
    if (c.credentials && (c.headers.includes('*') || c.exposedHeaders.includes('*')))
      ctx.addIssue({ code: 'custom', path: ['headers'], message: 'headers "*" cannot be combined with credentials: list the headers' });
  });
export type CorsPolicy = z.infer<typeof CorsPolicy>;

const Cidr = z
  .string()
  .max(64)
  .refine((s) => parseCidr(s) !== null, { message: 'must be an IPv4 or IPv6 address or CIDR (a.b.c.d/n, x:y::/n)' });

/**
 * Client address rules. A deny match refuses; otherwise, with an allow list, only addresses in
 * it pass. Both empty = no rule.
 */
export const IpRules = z.object({
  allow: z.array(Cidr).max(MAX_IP_RULES).default([]),
  deny: z.array(Cidr).max(MAX_IP_RULES).default([]),
});
export type IpRules = z.infer<typeof IpRules>;

/** Per target of the API, in each gateway process (ADR 0025). */
export const CircuitBreakerPolicy = z.object({
  /** Share of failed calls (5xx answers, timeouts, connect failures) in the window that opens the circuit. */
  failureRatio: z.number().gt(0).max(1),
  /** Calls the window must hold before the ratio counts. */
  minRequests: z.number().int().min(1).max(100_000),
  windowSeconds: z.number().int().min(1).max(600),
  /** How long an open circuit refuses calls before it lets probes through. */
  openSeconds: z.number().int().min(1).max(3600),
  /** Probes let through at once while half-open; that many successes in a row close the circuit. */
  halfOpenProbes: z.number().int().min(1).max(100),
});
export type CircuitBreakerPolicy = z.infer<typeof CircuitBreakerPolicy>;

export const Scope = z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/, 'a scope is 1-128 visible characters, no quote or backslash');
export const Scopes = z.array(Scope).max(MAX_SCOPES);
