import { ApiError, type AdminClient } from './admin-client';
import type { ApiConfig, PlanConfig, RouteConfig } from './config-schema';
import { CliError, EXIT } from './errors';
import type { Change } from './plan';
import { describeChange } from './render';
import type { Workspace } from './workspace';

/** The console creates at most this many routes with their API; the rest are added one by one. */
const ROUTES_AT_CREATION = 50;

function routeBody(r: RouteConfig) {
  const { id: _id, ...rest } = r;
  return rest;
}

function apiFields(a: ApiConfig, only?: string[]): Record<string, unknown> {
  const all: Record<string, unknown> = {
    name: a.name,
    slug: a.slug,
    description: a.description,
    basePath: a.basePath,
    version: a.version,
    visibility: a.visibility,
    authMode: a.authMode,
    jwtConfig: a.jwt,
    introspectionConfig: a.introspection ? withoutNullSecret(a.introspection) : a.introspection,
    deprecatedAt: a.deprecatedAt,
    sunsetAt: a.sunsetAt,
    deprecationLink: a.deprecationLink,
    allowQueryKey: a.allowQueryKey,
    failMode: a.failMode,
    loadBalancing: a.loadBalancing,
    connectTimeoutMs: a.connectTimeoutMs,
    headersTimeoutMs: a.headersTimeoutMs,
    requestTimeoutMs: a.requestTimeoutMs,
    retries: a.retries,
    openapiUrl: a.openapiUrl,
    openapi: a.openapi,
    cors: a.cors,
    ipRules: a.ipRules,
    perIpRateLimit: a.perIpRateLimit,
    circuitBreaker: a.circuitBreaker,
    targets: a.targets,
  };
  const rename: Record<string, string> = { jwt: 'jwtConfig', introspection: 'introspectionConfig' };
  if (!only) return all;
  return Object.fromEntries(only.map((f) => rename[f] ?? f).map((k) => [k, all[k]]));
}

/** A null secret means "keep the stored one": the console is sent no secret at all. */
function withoutNullSecret(i: NonNullable<ApiConfig['introspection']>) {
  const { clientSecret, ...rest } = i;
  return clientSecret === null ? rest : i;
}

function planBody(p: PlanConfig, apiIds: string[]) {
  const { id: _id, apis: _apis, ...rest } = p;
  return { ...rest, apiIds };
}

export type ApplyReport = { applied: number };

/**
 * Runs the changes in order, one request each, printing each as it lands. The first refusal stops
 * the run with a line naming the change and the console's reason; what ran before it stays
 * applied, and running apply again finishes the job (every step is idempotent by design).
 */
export async function applyChanges(
  client: AdminClient,
  ws: Workspace,
  changes: Change[],
  log: (line: string) => void,
): Promise<ApplyReport> {
  const apiIdBySlug = new Map(ws.apis.map((a) => [a.slug, a.id]));
  let applied = 0;
  const resolveApis = (slugs: string[], plan: string) =>
    slugs.map((s) => {
      const id = apiIdBySlug.get(s);
      if (!id) throw new CliError(`plan ${plan} names API ${s}, which neither the file nor the workspace has`, EXIT.dataError);
      return id;
    });

  for (const c of changes) {
    const label = describeChange(c).head;
    try {
      switch (c.kind) {
        case 'settings':
          await client.request('PATCH', '/settings', Object.fromEntries(c.changes.map((f) => [f.field, f.to])));
          break;
        case 'api.create': {
          const body = apiFields(c.api);
          if (body.openapi === null) delete body.openapi;
          if (body.openapiUrl === null) delete body.openapiUrl;
          if (body.jwtConfig === null) delete body.jwtConfig;
          if (body.introspectionConfig === null) delete body.introspectionConfig;
          const first = c.api.routes.slice(0, ROUTES_AT_CREATION).map(routeBody);
          const created = await client.request<{ id: string }>('POST', '/apis', { ...body, routes: first });
          apiIdBySlug.set(c.api.slug, created.id);
          for (const r of c.api.routes.slice(ROUTES_AT_CREATION)) {
            await client.request('POST', `/apis/${encodeURIComponent(created.id)}/routes`, routeBody(r));
          }
          break;
        }
        case 'api.update':
          await client.request(
            'PATCH',
            `/apis/${encodeURIComponent(c.id)}`,
            apiFields(
              c.api,
              c.changes.map((f) => f.field),
            ),
          );
          if (c.changes.some((f) => f.field === 'slug')) {
            for (const [s, id] of apiIdBySlug) if (id === c.id) apiIdBySlug.delete(s);
            apiIdBySlug.set(c.api.slug, c.id);
          }
          break;
        case 'api.delete':
          await client.request('DELETE', `/apis/${encodeURIComponent(c.id)}`);
          apiIdBySlug.delete(c.slug);
          break;
        case 'route.create':
          await client.request('POST', `/apis/${encodeURIComponent(c.apiId)}/routes`, routeBody(c.route));
          break;
        case 'route.update':
          await client.request(
            'PATCH',
            `/routes/${encodeURIComponent(c.id)}`,
            Object.fromEntries(c.changes.map((f) => [f.field, (c.route as Record<string, unknown>)[f.field]])),
          );
          break;
        case 'route.delete':
          await client.request('DELETE', `/routes/${encodeURIComponent(c.id)}`);
          break;
        case 'plan.create':
          await client.request('POST', '/plans', planBody(c.plan, resolveApis(c.plan.apis, c.plan.slug)));
          break;
        case 'plan.update': {
          const body: Record<string, unknown> = {};
          for (const f of c.changes) {
            if (f.field === 'apis') body.apiIds = resolveApis(c.plan.apis, c.plan.slug);
            else body[f.field] = (c.plan as Record<string, unknown>)[f.field];
          }
          await client.request('PATCH', `/plans/${encodeURIComponent(c.id)}`, body);
          break;
        }
        case 'plan.delete':
          await client.request('DELETE', `/plans/${encodeURIComponent(c.id)}`);
          break;
      }
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      const fields = err.fields
        ? ` (${Object.entries(err.fields)
            .map(([k, v]) => `${k}: ${v}`)
            .join('; ')})`
        : '';
      const done = applied ? `${applied} change${applied === 1 ? ' was' : 's were'} applied before it; ` : '';
      throw new CliError(
        `apply stopped at "${label}": the console answered ${err.status} ${err.code}: ${err.message}${fields}${
          err.requestId ? ` [request ${err.requestId}]` : ''
        }\n${done}run \`tollgate diff\` to see what is left`,
        err.status === 403 ? EXIT.noPermission : EXIT.failed,
      );
    }
    applied++;
    log(label);
  }
  return { applied };
}
