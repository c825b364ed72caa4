import type { ApiPolicy, PlanPolicy, PolicySnapshot, RoutePolicy } from '@tollgate/policy';
import { compileStages } from '../pipeline/compile';
import type { Stage } from '../pipeline/context';
import { compileTargets, type Balancer } from '../proxy/upstreams';
import { compileCors, type CompiledCors } from '../pipeline/cors';
import { compileIpRules, type CompiledIpRules } from '../pipeline/ip-rules';

/** A route compiled for matching against the canonical path below its API's base path. */
export type CompiledRoute = {
  policy: RoutePolicy;
  id: string;
  methods: ReadonlySet<string> | null;
  /** Literal segment, or null for a `:param` segment. */
  segments: ReadonlyArray<string | null>;
  wildcard: boolean;
  /** What runs for a request once it matched this route (`pipeline/compile.ts`). */
  stages: readonly Stage[];
};

export type CompiledApi = {
  policy: ApiPolicy;
  id: string;
  basePath: string;
  routes: CompiledRoute[];
  /** The live targets: every key's calls, except test keys where the API has sandbox targets. */
  balancer: Balancer;
  /** The API's sandbox targets (ADR 0017), for test keys only; null when it has none. */
  sandboxBalancer: Balancer | null;
  /** CORS and the API's own address rules (ADR 0025), compiled; null = off. */
  cors: CompiledCors | null;
  ipRules: CompiledIpRules | null;
};

export type TenantRuntime = {
  snapshot: PolicySnapshot;
  tenantId: string;
  version: number;
  /** Longest base path first, so `/v1/admin` wins over `/v1`. */
  apis: CompiledApi[];
  plans: ReadonlyMap<string, PlanPolicy>;
  /** Address rules of the plans that have some (ADR 0025), by plan id; usually empty. */
  planIpRules: ReadonlyMap<string, CompiledIpRules>;
};

/** Host (lower-case, no port) → tenant, and tenant id → tenant. */
export type RouteTable = {
  byHost: ReadonlyMap<string, TenantRuntime>;
  tenants: ReadonlyMap<string, TenantRuntime>;
};

export const EMPTY_TABLE: RouteTable = { byHost: new Map(), tenants: new Map() };

function compileRoute(api: ApiPolicy, route: RoutePolicy): CompiledRoute {
  const parts = route.path.split('/').slice(1);
  let wildcard = false;
  if (parts[parts.length - 1] === '*') {
    wildcard = true;
    parts.pop();
  }
  // A trailing slash in the pattern means "the collection itself", same as without it.
  if (parts.length && parts[parts.length - 1] === '') parts.pop();
  return {
    policy: route,
    id: route.id,
    methods: route.methods.length ? new Set(route.methods) : null,
    segments: parts.map((p) => (p.startsWith(':') ? null : p)),
    wildcard,
    stages: compileStages(api, route),
  };
}

function specificity(r: CompiledRoute): number {
  const literals = r.segments.filter((s) => s !== null).length;
  return (r.wildcard ? 0 : 1_000_000) + r.segments.length * 1000 + literals;
}

export function compileTenant(snapshot: PolicySnapshot): TenantRuntime {
  const apis = snapshot.apis.map((api) => {
    const base = api.basePath.length > 1 && api.basePath.endsWith('/') ? api.basePath.slice(0, -1) : api.basePath;
    const routes = api.routes.map((r) => compileRoute(api, r));
    // Stable sort: exact routes before wildcards, longer and more literal patterns first.
    routes.sort((a, b) => specificity(b) - specificity(a));
    const sandbox = api.targets.filter((t) => t.sandbox === true);
    // A live key can never reach a sandbox target: they are not in its balancer.
    const live = sandbox.length ? { ...api, targets: api.targets.filter((t) => t.sandbox !== true) } : api;
    const balancer = compileTargets(live, snapshot.allowPrivateTargets);
    const sandboxBalancer = sandbox.length ? compileTargets({ ...api, targets: sandbox }, snapshot.allowPrivateTargets) : null;
    const cors = api.cors ? compileCors(api.cors) : null;
    return { policy: api, id: api.id, basePath: base, routes, balancer, sandboxBalancer, cors, ipRules: compileIpRules(api.ipRules) };
  });
  apis.sort((a, b) => b.basePath.length - a.basePath.length);
  return {
    snapshot,
    tenantId: snapshot.tenantId,
    version: snapshot.version,
    apis,
    plans: new Map(snapshot.plans.map((p) => [p.id, p])),
    planIpRules: new Map(
      snapshot.plans.flatMap((p) => {
        const rules = compileIpRules(p.ipRules);
        return rules === null ? [] : [[p.id, rules] as const];
      }),
    ),
  };
}

/**
 * The gateway's routing table, changed one tenant at a time: `upsert` and `remove` cost the
 * tenant's own hosts, not the table's size, so one tenant's change never rebuilds the others
 * (at 10k tenants a rebuild per change made a full republish quadratic). A tenant's compiled
 * runtime is immutable and swapped by one map assignment, so a request sees that tenant's old
 * or new configuration, never a mix. A tenant's own subdomain always wins over another
 * tenant's custom domain; among custom domains the earlier claim wins.
 */
export class TenantRoutes implements RouteTable {
  readonly byHost = new Map<string, TenantRuntime>();
  readonly tenants = new Map<string, TenantRuntime>();
  /** Host → ids of the tenants that claim it, in claim order (almost always one). */
  private readonly claims = new Map<string, string[]>();

  constructor(private readonly baseDomain: string) {}

  private ownHost(t: TenantRuntime): string {
    return `${t.snapshot.tenantSlug.toLowerCase()}.${this.baseDomain}`;
  }

  private hostsOf(t: TenantRuntime | undefined): Set<string> {
    if (!t) return new Set();
    const hosts = new Set([this.ownHost(t)]);
    for (const h of t.snapshot.hosts) hosts.add(h.toLowerCase());
    return hosts;
  }

  /** Adds a tenant or replaces its previous runtime; returns the previous one. */
  upsert(t: TenantRuntime): TenantRuntime | undefined {
    const previous = this.tenants.get(t.tenantId);
    const before = this.hostsOf(previous);
    const after = this.hostsOf(t);
    this.tenants.set(t.tenantId, t);
    for (const h of before) if (!after.has(h)) this.unclaim(h, t.tenantId);
    for (const h of after) {
      if (!before.has(h)) {
        const list = this.claims.get(h);
        if (list) list.push(t.tenantId);
        else this.claims.set(h, [t.tenantId]);
      }
      this.resolve(h);
    }
    return previous;
  }

  /** Removes a tenant; returns its runtime, if it was there. */
  remove(tenantId: string): TenantRuntime | undefined {
    const previous = this.tenants.get(tenantId);
    if (!previous) return undefined;
    this.tenants.delete(tenantId);
    for (const h of this.hostsOf(previous)) this.unclaim(h, tenantId);
    return previous;
  }

  private unclaim(host: string, tenantId: string): void {
    const list = this.claims.get(host);
    if (!list) return;
    const i = list.indexOf(tenantId);
    if (i !== -1) list.splice(i, 1);
    if (!list.length) this.claims.delete(host);
    this.resolve(host);
  }

  private resolve(host: string): void {
    const list = this.claims.get(host);
    let owner: TenantRuntime | undefined;
    if (list) {
      for (const id of list) {
        const t = this.tenants.get(id);
        if (!t) continue;
        if (this.ownHost(t) === host) {
          owner = t;
          break;
        }
        owner ??= t;
      }
    }
    if (owner) this.byHost.set(host, owner);
    else this.byHost.delete(host);
  }
}

export function buildRouteTable(tenants: Iterable<TenantRuntime>, baseDomain: string): TenantRoutes {
  const table = new TenantRoutes(baseDomain);
  for (const t of tenants) table.upsert(t);
  return table;
}

/**
 * `Host` header → lookup key: lower-case, port and trailing dot removed. Null when the header is
 * missing or not a host[:port] (RFC 9110 §7.2): `a@b` (userinfo), paths, spaces and the like
 * are malformed requests, not unknown hosts.
 */
export function normalizeHost(host: string | undefined): string | null {
  if (!host || host.length > 255) return null;
  let h = host;
  let port = '';
  if (h.charCodeAt(0) === 91 /* [ */) {
    const end = h.indexOf(']');
    if (end === -1) return null;
    for (let i = 1; i < end; i++) {
      const c = h.charCodeAt(i);
      // hex digits, ':' and '.' (an embedded IPv4 address)
      if (!((c >= 48 && c <= 58) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70) || c === 46)) return null;
    }
    port = h.slice(end + 1);
    h = h.slice(0, end + 1);
    if (port !== '' && port.charCodeAt(0) !== 58) return null;
  } else {
    const colon = h.indexOf(':');
    if (colon !== -1) {
      port = h.slice(colon);
      h = h.slice(0, colon);
    }
    if (h === '') return null;
    for (let i = 0; i < h.length; i++) {
      const c = h.charCodeAt(i);
      // letters, digits, '-', '.', '_'
      if (!((c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 45 || c === 46 || c === 95)) return null;
    }
  }
  if (port.length > 6) return null;
  for (let i = 1; i < port.length; i++) {
    const c = port.charCodeAt(i);
    if (c < 48 || c > 57) return null;
  }
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h.toLowerCase();
}

export type RouteMatch =
  | { kind: 'match'; api: CompiledApi; route: CompiledRoute; /** Path below the base path, starts with '/'. */ rest: string }
  | { kind: 'no_api' }
  | { kind: 'no_route'; api: CompiledApi }
  | { kind: 'method_not_allowed'; api: CompiledApi; allow: string[] };

export function matchRoute(tenant: TenantRuntime, method: string, path: string): RouteMatch {
  let api: CompiledApi | undefined;
  for (const a of tenant.apis) {
    const b = a.basePath;
    if (b === '/' || path === b || (path.startsWith(b) && path.charCodeAt(b.length) === 47)) {
      api = a;
      break;
    }
  }
  if (!api) return { kind: 'no_api' };
  const rest = api.basePath === '/' ? path : path.slice(api.basePath.length) || '/';
  // Segments of the rest, ignoring one trailing slash (it is kept in the forwarded URL).
  const trimmed = rest.length > 1 && rest.endsWith('/') ? rest.slice(1, -1) : rest.slice(1);
  const segs = trimmed === '' ? [] : trimmed.split('/');
  let allow: string[] | null = null;
  for (const r of api.routes) {
    if (!segmentsMatch(r, segs)) continue;
    if (r.methods && !r.methods.has(method)) {
      (allow ??= []).push(...r.methods);
      continue;
    }
    return { kind: 'match', api, route: r, rest };
  }
  if (allow) return { kind: 'method_not_allowed', api, allow: [...new Set(allow)] };
  return { kind: 'no_route', api };
}

function segmentsMatch(r: CompiledRoute, segs: string[]): boolean {
  const n = r.segments.length;
  if (r.wildcard ? segs.length < n : segs.length !== n) return false;
  for (let i = 0; i < n; i++) {
    const lit = r.segments[i];
    if (lit !== null && lit !== segs[i]) return false;
  }
  return true;
}
