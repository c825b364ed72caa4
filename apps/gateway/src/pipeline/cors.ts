import type { CorsPolicy } from '@tollgate/policy';
import { matchRoute, type CompiledApi, type TenantRuntime } from '../routing/route-table';
import { NEXT, type RequestContext, type Step } from './context';
import { answer } from './reply';

/** An API's CORS policy, compiled once per snapshot (ADR 0025). */
export type CompiledCors = {
  anyOrigin: boolean;
  origins: ReadonlySet<string>;
  /** Upper-case methods a preflight may ask for; null = whatever the route allows. */
  methods: ReadonlySet<string> | null;
  /** Lower-case request headers a preflight may ask for. */
  headers: ReadonlySet<string>;
  anyHeader: boolean;
  exposed: string | null;
  credentials: boolean;
  maxAge: string;
};

/** Longest Origin / Access-Control-Request-Headers value read; past it the request isn't a CORS request we serve. */
const MAX_ORIGIN = 300;
const MAX_REQUEST_HEADERS = 2048;

export function compileCors(p: CorsPolicy): CompiledCors {
  return {
    anyOrigin: p.origins.includes('*'),
    origins: new Set(p.origins),
    methods: p.methods.length ? new Set(p.methods) : null,
    headers: new Set(p.headers.map((h) => h.toLowerCase())),
    anyHeader: p.headers.includes('*'),
    exposed: p.exposedHeaders.length ? p.exposedHeaders.join(', ') : null,
    credentials: p.credentials,
    maxAge: String(p.maxAgeSeconds),
  };
}

/** The `Access-Control-Allow-Origin` value for this Origin, or null when it isn't allowed (or malformed). */
function allowedOrigin(c: CompiledCors, origin: string | string[] | undefined): string | null {
  if (typeof origin !== 'string' || origin.length > MAX_ORIGIN) return null;
  if (c.anyOrigin) return '*';
  // Exact match: browsers send the serialised origin, lower-case; anything else (a path, `null`,
  // upper case from a hand-made request) matches nothing.
  return c.origins.has(origin) ? origin : null;
}

/** A CORS preflight: OPTIONS with an Origin and Access-Control-Request-Method (Fetch §3.2.2). */
export function isPreflight(ctx: RequestContext): boolean {
  return ctx.headers.origin !== undefined && ctx.headers['access-control-request-method'] !== undefined;
}

function refuse(ctx: RequestContext, c: CompiledCors, why: string) {
  if (!c.anyOrigin) ctx.reply.header('vary', 'Origin');
  return answer(ctx, 'forbidden', `CORS preflight refused: ${why}`);
}

/**
 * Answers a preflight at the gateway: no key is asked for (browsers never send one on a
 * preflight), the upstream never sees it, and it is not metered (the API is not set on the
 * context, so no usage event is made). The method asked for must be one the CORS policy lists
 * and one a route at this path serves.
 */
export function answerPreflight(ctx: RequestContext, tenant: TenantRuntime, api: CompiledApi, path: string): Step {
  const c = api.cors!;
  const allow = allowedOrigin(c, ctx.headers.origin);
  if (allow === null) return refuse(ctx, c, 'origin not allowed');
  const wanted = ctx.headers['access-control-request-method'];
  if (typeof wanted !== 'string' || !/^[A-Z]{1,16}$/.test(wanted)) return refuse(ctx, c, 'malformed Access-Control-Request-Method');
  if (c.methods !== null && !c.methods.has(wanted)) return refuse(ctx, c, `method ${wanted} not allowed`);
  const m = matchRoute(tenant, wanted, path);
  if (m.kind !== 'match' || m.api !== api) return refuse(ctx, c, `no route serves ${wanted} here`);

  let allowHeaders: string | null = null;
  const asked = ctx.headers['access-control-request-headers'];
  if (asked !== undefined) {
    if (typeof asked !== 'string' || asked.length > MAX_REQUEST_HEADERS) return refuse(ctx, c, 'malformed Access-Control-Request-Headers');
    const names = asked.split(',');
    const ok: string[] = [];
    for (const raw of names) {
      const name = raw.trim().toLowerCase();
      if (name === '') continue;
      if (!/^[!#$%&'*+.^_`|~0-9a-z-]{1,64}$/.test(name)) return refuse(ctx, c, 'malformed Access-Control-Request-Headers');
      if (!c.anyHeader && !c.headers.has(name)) return refuse(ctx, c, `header ${name} not allowed`);
      ok.push(name);
    }
    if (ok.length) allowHeaders = ok.join(', ');
  }
  const reply = ctx.reply;
  reply.code(204).header('access-control-allow-origin', allow);
  reply.header('access-control-allow-methods', wanted);
  if (allowHeaders !== null) reply.header('access-control-allow-headers', allowHeaders);
  if (c.credentials) reply.header('access-control-allow-credentials', 'true');
  reply.header('access-control-max-age', c.maxAge);
  reply.header(
    'vary',
    c.anyOrigin
      ? 'Access-Control-Request-Method, Access-Control-Request-Headers'
      : 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
  );
  reply.header('x-request-id', ctx.request.id);
  return reply.send();
}

/**
 * Actual (non-preflight) requests on an API with CORS: the headers its response gets, whoever
 * answers it — the upstream (respond.ts, cache.ts) or the gateway itself (a 401 or 429 the
 * browser's script can then read). `Vary: Origin` whenever the answer depends on the Origin.
 */
export function corsHeaders(ctx: RequestContext): Step {
  const c = ctx.api!.cors!;
  const allow = allowedOrigin(c, ctx.headers.origin);
  const out: string[] = [];
  if (!c.anyOrigin) out.push('vary', 'Origin');
  if (allow !== null) {
    out.push('access-control-allow-origin', allow);
    if (c.credentials) out.push('access-control-allow-credentials', 'true');
    if (c.exposed !== null) out.push('access-control-expose-headers', c.exposed);
  }
  ctx.corsHeaders = out;
  const reply = ctx.reply;
  for (let i = 0; i < out.length; i += 2) reply.header(out[i]!, out[i + 1]!);
  return NEXT;
}

/** The upstream's own `Access-Control-*` headers give way to the API's policy; `Vary` gains what ours needs. */
export function applyCors(resHeaders: string[], cors: readonly string[]): void {
  let vary: string | null = null;
  for (let i = resHeaders.length - 2; i >= 0; i -= 2) {
    const name = resHeaders[i]!;
    if (name.startsWith('access-control-')) resHeaders.splice(i, 2);
    else if (name === 'vary') {
      vary = vary === null ? resHeaders[i + 1]! : `${resHeaders[i + 1]!}, ${vary}`;
      resHeaders.splice(i, 2);
    }
  }
  for (let i = 0; i < cors.length; i += 2) {
    if (cors[i] === 'vary') vary = mergeVary(vary, cors[i + 1]!);
    else resHeaders.push(cors[i]!, cors[i + 1]!);
  }
  if (vary !== null) resHeaders.push('vary', vary);
}

/** `Vary` with `add` listed once (case-insensitive); `*` already covers everything. */
export function mergeVary(existing: string | null | undefined, add: string): string {
  if (!existing) return add;
  const names = existing.split(',').map((s) => s.trim().toLowerCase());
  if (names.includes('*') || names.includes(add.toLowerCase())) return existing;
  return `${existing}, ${add}`;
}

/** A cached answer's own headers with the CORS ones added (its stored `Vary` kept). */
export function withCors(own: Record<string, string> | null, cors: readonly string[], storedVary: unknown): Record<string, string> {
  const out: Record<string, string> = { ...own };
  for (let i = 0; i < cors.length; i += 2) {
    const name = cors[i]!;
    out[name] = name === 'vary' ? mergeVary(typeof storedVary === 'string' ? storedVary : null, cors[i + 1]!) : cors[i + 1]!;
  }
  return out;
}
