import type { z } from 'zod';
import type { AdminClient } from './admin-client';
import { CliError, EXIT } from './errors';
import { routeKey } from './config-file';
import {
  Api,
  CONFIG_VERSION,
  Plan,
  Route,
  type ApiConfig,
  type ConfigFile,
  type PlanConfig,
  type RouteConfig,
  type SettingsConfig,
  type TargetConfig,
} from './config-schema';

// What the admin API answers (the fields this tool reads).
type ApiRow = {
  id: string;
  slug: string;
  name: string;
  description: string;
  basePath: string;
  version: string;
  visibility: string;
  authMode: string;
  jwtConfig: Record<string, unknown> | null;
  introspectionConfig?: Record<string, unknown> | null;
  deprecatedAt?: string | null;
  sunsetAt?: string | null;
  deprecationLink?: string | null;
  allowQueryKey: boolean;
  failMode: string;
  loadBalancing: string;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  retries: number;
  openapi: Record<string, unknown> | null;
  openapiUrl: string | null;
  cors?: unknown;
  ipRules?: unknown;
  perIpRateLimit?: unknown;
  circuitBreaker?: unknown;
  targets: Array<{ url: string; weight: number; sandbox?: boolean; healthCheckPath: string | null }>;
  routes?: Array<RouteRow>;
};
type RouteRow = {
  id: string;
  name: string;
  methods: string[];
  path: string;
  requestTimeoutMs: number | null;
  cacheTtlSeconds: number;
  rateLimit: unknown;
  transform: unknown;
  requiredScopes?: string[];
  sharedRateLimit?: unknown;
};
type PlanRow = Omit<PlanConfig, 'apis' | 'id'> & { id: string; status: 'ACTIVE' | 'ARCHIVED'; apiIds: string[] };
type SettingsRow = Required<SettingsConfig> & { slug: string; name: string };

export type CurrentRoute = Omit<RouteConfig, 'id'> & { id: string };
export type CurrentApi = Omit<ApiConfig, 'id' | 'routes'> & { id: string; routes: CurrentRoute[] };
export type CurrentPlan = Omit<PlanConfig, 'id'> & { id: string };
export type Workspace = {
  slug: string;
  settings: Required<SettingsConfig>;
  apis: CurrentApi[];
  plans: CurrentPlan[];
  archivedPlans: Array<{ id: string; slug: string }>;
};

const bySlug = <T extends { slug: string }>(a: T, b: T) => (a.slug < b.slug ? -1 : a.slug > b.slug ? 1 : 0);

/** Upstream order carries no meaning (the gateway balances over the set): sorted, so files compare. */
export function sortTargets(targets: TargetConfig[]): TargetConfig[] {
  const key = (t: TargetConfig) => `${t.url}\u0000${t.weight}\u0000${t.sandbox}\u0000${t.healthCheckPath ?? ''}`;
  return [...targets].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

export function sortRoutes<T extends Pick<RouteConfig, 'path' | 'methods'>>(routes: T[]): T[] {
  return [...routes].sort((a, b) => (routeKey(a) < routeKey(b) ? -1 : routeKey(a) > routeKey(b) ? 1 : 0));
}

/** The console normalises upstream URLs to this form; so does the file, or every diff would show them. */
export function normaliseTargetUrl(url: string): string {
  try {
    return new URL(url).toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}

/** The console's data in the file's shape; what this version can't express is said, not thrown. */
function normalise<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const res = schema.safeParse(value);
  if (res.success) return res.data;
  const issue = res.error.issues[0]!;
  throw new CliError(
    `${what} holds a value this tollgate cannot express (${issue.path.join('.')}: ${issue.message}); update tollgate`,
    EXIT.failed,
  );
}

function toRoute(r: RouteRow, api: string): CurrentRoute {
  const parsed = normalise(
    Route,
    {
      name: r.name,
      methods: [...new Set(r.methods)],
      path: r.path,
      requestTimeoutMs: r.requestTimeoutMs,
      cacheTtlSeconds: r.cacheTtlSeconds,
      rateLimit: r.rateLimit ?? null,
      transform: r.transform ?? null,
      requiredScopes: r.requiredScopes ?? [],
      sharedRateLimit: r.sharedRateLimit ?? null,
    },
    `route ${r.id} of API ${api}`,
  );
  return { ...parsed, id: r.id };
}

/** The admin API answers `clientSecretSet`, never the secret: the file's shape says null. */
function introspectionOf(c: Record<string, unknown> | null): Record<string, unknown> | null {
  if (!c) return null;
  const { clientSecretSet: _set, ...rest } = c;
  return { ...rest, clientSecret: null };
}

function toApi(row: ApiRow): CurrentApi {
  const parsed = normalise(
    Api,
    {
      slug: row.slug,
      name: row.name,
      description: row.description,
      basePath: row.basePath,
      version: row.version,
      visibility: row.visibility,
      authMode: row.authMode,
      jwt: row.jwtConfig ?? null,
      introspection: introspectionOf(row.introspectionConfig ?? null),
      deprecatedAt: row.deprecatedAt ?? null,
      sunsetAt: row.sunsetAt ?? null,
      deprecationLink: row.deprecationLink ?? null,
      allowQueryKey: row.allowQueryKey,
      failMode: row.failMode,
      loadBalancing: row.loadBalancing,
      connectTimeoutMs: row.connectTimeoutMs,
      headersTimeoutMs: row.headersTimeoutMs,
      requestTimeoutMs: row.requestTimeoutMs,
      retries: row.retries,
      openapiUrl: row.openapiUrl,
      openapi: row.openapi,
      cors: row.cors ?? null,
      ipRules: row.ipRules ?? null,
      perIpRateLimit: row.perIpRateLimit ?? null,
      circuitBreaker: row.circuitBreaker ?? null,
      targets: row.targets.map((t) => ({ url: t.url, weight: t.weight, sandbox: t.sandbox ?? false, healthCheckPath: t.healthCheckPath })),
      routes: [],
    },
    `API ${row.slug}`,
  );
  return {
    ...parsed,
    id: row.id,
    targets: sortTargets(parsed.targets),
    routes: sortRoutes((row.routes ?? []).map((r) => toRoute(r, row.slug))),
  };
}

/** Reads everything a configuration file describes, in one consistent shape. */
export async function readWorkspace(client: AdminClient): Promise<Workspace> {
  const settings = await client.request<SettingsRow>('GET', '/settings');
  const list = await client.listAll<ApiRow>('/apis');
  const apis: CurrentApi[] = [];
  for (const a of list) apis.push(toApi(await client.request<ApiRow>('GET', `/apis/${encodeURIComponent(a.id)}`)));
  const slugOf = new Map(apis.map((a) => [a.id, a.slug]));
  const plans: CurrentPlan[] = [];
  const archivedPlans: Workspace['archivedPlans'] = [];
  for (const p of await client.listAll<PlanRow>('/plans')) {
    if (p.status === 'ARCHIVED') {
      archivedPlans.push({ id: p.id, slug: p.slug });
      continue;
    }
    const { apiIds, status: _s, id, ...fields } = p;
    const parsed = normalise(
      Plan,
      {
        ...pick(
          fields,
          Object.keys(Plan.shape).filter((k) => k !== 'apis' && k !== 'id'),
        ),
        apis: apiIds.map((i) => slugOf.get(i)).filter((s): s is string => Boolean(s)),
      },
      `plan ${p.slug}`,
    );
    plans.push({ ...parsed, id, apis: [...parsed.apis].sort() });
  }
  return {
    slug: settings.slug,
    settings: {
      currency: settings.currency,
      allowPrivateTargets: settings.allowPrivateTargets,
      requireDeveloperApproval: settings.requireDeveloperApproval,
    },
    apis: apis.sort(bySlug),
    plans: plans.sort(bySlug),
    archivedPlans,
  };
}

function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => k in o).map((k) => [k, o[k]]));
}

// ─── export: secrets out ───────────────────────────────────────────────────────────────

/** Header names whose values are credentials more often than not. */
const SECRET_HEADER = /authorization|cookie|api[-_]?key|token|secret|password|signature/i;

export type SecretRef = { env: string; where: string };

function envName(...parts: string[]): string {
  return ['TOLLGATE_SECRET', ...parts]
    .map((p) =>
      p
        .toUpperCase()
        .replace(/[^A-Z0-9]+/g, '_')
        .replace(/^_+|_+$/g, ''),
    )
    .filter(Boolean)
    .join('_');
}

/**
 * The workspace as a configuration file. Credentials (an HS* JWT secret, a credential-looking
 * header a route sets) are replaced by ${env:NAME} references; the names are returned so the
 * caller can say which variables an apply will need.
 */
export function toConfigFile(ws: Workspace, opts: { withIds?: boolean } = {}): { config: ConfigFile; secrets: SecretRef[] } {
  const secrets: SecretRef[] = [];
  const apis = ws.apis.map((a, i): ApiConfig => {
    let jwt = a.jwt;
    if (jwt?.key && jwt.algorithms.some((alg) => alg.startsWith('HS'))) {
      const env = envName(a.slug, 'JWT_KEY');
      secrets.push({ env, where: `apis[${i}].jwt.key` });
      jwt = { ...jwt, key: `\${env:${env}}` };
    }
    const routes = a.routes.map((r, j): RouteConfig => {
      const transform = r.transform ? structuredClone(r.transform) : null;
      for (const side of ['requestHeaders', 'responseHeaders'] as const) {
        const set = transform?.[side]?.set;
        if (!set) continue;
        for (const h of Object.keys(set)) {
          if (!SECRET_HEADER.test(h)) continue;
          const env = envName(a.slug, r.methods.length ? [...r.methods].sort().join('_') : 'ANY', r.path, h);
          secrets.push({ env, where: `apis[${i}].routes[${j}].transform.${side}.set.${h}` });
          set[h] = `\${env:${env}}`;
        }
      }
      return { ...r, id: opts.withIds ? r.id : undefined, transform };
    });
    return { ...a, id: opts.withIds ? a.id : undefined, jwt, routes };
  });
  const plans = ws.plans.map((p) => ({ ...p, id: opts.withIds ? p.id : undefined }));
  return { config: { version: CONFIG_VERSION, settings: { ...ws.settings }, apis, plans }, secrets };
}
