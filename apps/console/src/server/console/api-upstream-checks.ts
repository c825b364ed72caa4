// Everything an API names that Tollgate will fetch (upstream targets, a JWKS URL, an OpenAPI
// URL) passes the same SSRF rules before it is stored.
import { Prisma } from '@tollgate/db';
import { ServiceError, type ServiceContext } from '../shared/context';
import { checkUpstreamUrl, type Resolver } from './ssrf';
import { validateOpenApi } from './openapi';

export type ApiServiceOptions = { resolve?: Resolver; fetchOpenApi?: (url: string) => Promise<string> };

const OPENAPI_FETCH_CAP = 1_000_000;

async function defaultFetchOpenApi(url: string): Promise<string> {
  const res = await fetch(url, { redirect: 'error', signal: AbortSignal.timeout(5000), headers: { accept: 'application/json' } });
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > OPENAPI_FETCH_CAP) {
      await reader.cancel();
      throw new Error('document is larger than 1 MB');
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function allowPrivate(ctx: ServiceContext): Promise<boolean> {
  const t = await ctx.db.tenant.findUnique({ where: { id: ctx.tenantId }, select: { allowPrivateTargets: true } });
  return t?.allowPrivateTargets ?? false;
}

export async function checkTargets(targets: Array<{ url: string }>, allow: boolean, opts: ApiServiceOptions) {
  const fields: Record<string, string> = {};
  const urls: string[] = [];
  for (const [i, t] of targets.entries()) {
    const res = await checkUpstreamUrl(t.url, { allowPrivate: allow, resolve: opts.resolve });
    if (!res.ok) fields[`targets.${i}.url`] = res.reason;
    else urls.push(res.url);
  }
  if (Object.keys(fields).length) {
    throw new ServiceError('unprocessable', `upstream target ${Object.values(fields)[0]}`, fields);
  }
  return urls;
}

/** The JWKS URL is fetched by the gateway, so it gets the same SSRF rules as an upstream. */
export async function checkJwks<T extends { jwksUrl: string | null } | null | undefined>(
  jwt: T,
  allow: boolean,
  opts: ApiServiceOptions,
): Promise<T> {
  if (!jwt?.jwksUrl) return jwt;
  const res = await checkUpstreamUrl(jwt.jwksUrl, { allowPrivate: allow, resolve: opts.resolve });
  if (!res.ok) throw new ServiceError('unprocessable', `JWKS URL ${res.reason}`, { 'jwtConfig.jwksUrl': res.reason });
  return { ...jwt, jwksUrl: res.url };
}

export async function resolveOpenApi(
  input: { openapi?: unknown; openapiUrl?: string | null },
  allow: boolean,
  opts: ApiServiceOptions,
): Promise<{ openapi?: Prisma.InputJsonValue | typeof Prisma.DbNull; openapiUrl?: string | null }> {
  const out: { openapi?: Prisma.InputJsonValue | typeof Prisma.DbNull; openapiUrl?: string | null } = {};
  let raw: unknown = input.openapi;
  if (input.openapiUrl !== undefined) out.openapiUrl = input.openapiUrl;
  if (input.openapiUrl && (raw === undefined || raw === null || raw === '')) {
    const check = await checkUpstreamUrl(input.openapiUrl, { allowPrivate: allow, resolve: opts.resolve });
    if (!check.ok) throw new ServiceError('unprocessable', `OpenAPI URL ${check.reason}`, { openapiUrl: check.reason });
    try {
      raw = await (opts.fetchOpenApi ?? defaultFetchOpenApi)(check.url);
    } catch (err) {
      throw new ServiceError('unprocessable', `OpenAPI URL could not be fetched: ${(err as Error).message}`, {
        openapiUrl: 'could not be fetched',
      });
    }
  }
  if (raw === null || raw === '') {
    out.openapi = Prisma.DbNull;
  } else if (raw !== undefined) {
    const res = validateOpenApi(raw);
    if (!res.ok) throw new ServiceError('unprocessable', `OpenAPI document ${res.reason}`, { openapi: res.reason });
    out.openapi = res.doc as Prisma.InputJsonValue;
  }
  return out;
}
