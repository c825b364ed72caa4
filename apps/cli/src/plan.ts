import { isDeepStrictEqual } from 'node:util';
import { normaliseBasePath, routeKey, sortKeys } from './config-file';
import {
  API_FIELDS,
  PLAN_FIELDS,
  ROUTE_FIELDS,
  type ApiConfig,
  type ConfigFile,
  type PlanConfig,
  type RouteConfig,
  type SettingsConfig,
} from './config-schema';
import { CliError, EXIT } from './errors';
import { normaliseTargetUrl, sortTargets, type CurrentApi, type CurrentPlan, type CurrentRoute, type Workspace } from './workspace';

export type FieldChange = { field: string; from: unknown; to: unknown };

/** One step of an apply, in the order it runs. */
export type Change =
  | { kind: 'settings'; changes: FieldChange[] }
  | { kind: 'api.create'; api: ApiConfig }
  | { kind: 'api.update'; api: ApiConfig; id: string; changes: FieldChange[] }
  | { kind: 'api.delete'; id: string; slug: string }
  | { kind: 'route.create'; apiSlug: string; apiId: string; route: RouteConfig }
  | { kind: 'route.update'; apiSlug: string; id: string; route: RouteConfig; changes: FieldChange[] }
  | { kind: 'route.delete'; apiSlug: string; id: string; route: RouteConfig }
  | { kind: 'plan.create'; plan: PlanConfig }
  | { kind: 'plan.update'; plan: PlanConfig; id: string; changes: FieldChange[] }
  | { kind: 'plan.delete'; id: string; slug: string };

export type Plan = {
  changes: Change[];
  /** In the workspace, not in the file, and kept because --prune was not given. */
  kept: Array<{ kind: 'api' | 'plan'; slug: string }>;
};

/** The file's API in the console's canonical form, so equal means equal. */
function canonicalApi(a: ApiConfig): ApiConfig {
  return {
    ...a,
    basePath: normaliseBasePath(a.basePath),
    targets: sortTargets(a.targets.map((t) => ({ ...t, url: normaliseTargetUrl(t.url) }))),
    openapi: a.openapi ? (sortKeys(a.openapi) as Record<string, unknown>) : null,
    deprecatedAt: isoOrAsIs(a.deprecatedAt),
    sunsetAt: isoOrAsIs(a.sunsetAt),
  };
}

function isoOrAsIs(s: string | null): string | null {
  const t = s === null ? NaN : Date.parse(s);
  return Number.isNaN(t) ? s : new Date(t).toISOString();
}

/**
 * The workspace never hands out the introspection secret: compare as if it held the file's, so
 * only the other settings make a change (rotating the secret alone needs another field changed).
 */
function withFileSecret(have: CurrentApi, want: ApiConfig): CurrentApi {
  if (!have.introspection || !want.introspection) return have;
  return { ...have, introspection: { ...have.introspection, clientSecret: want.introspection.clientSecret } };
}

function canonicalRoute(r: RouteConfig): RouteConfig {
  return {
    ...r,
    methods: [...new Set(r.methods)].sort(),
    transform: r.transform ? (sortKeys(r.transform) as RouteConfig['transform']) : null,
  };
}

function diffFields<T extends object>(want: T, have: T, fields: readonly (keyof T)[]): FieldChange[] {
  const out: FieldChange[] = [];
  for (const f of fields) {
    const to = want[f];
    const from = have[f];
    const norm = (v: unknown) => (v && typeof v === 'object' ? sortKeys(v) : v);
    if (!isDeepStrictEqual(norm(to), norm(from))) out.push({ field: String(f), from, to });
  }
  return out;
}

/** Matches by id when the file gives one the workspace has, else by slug. */
function matcher<T extends { id: string; slug: string }>(current: T[]) {
  const used = new Set<string>();
  const byId = new Map(current.map((c) => [c.id, c]));
  const bySlug = new Map(current.map((c) => [c.slug, c]));
  return {
    match(want: { id?: string; slug: string }): T | undefined {
      const hit = (want.id ? byId.get(want.id) : undefined) ?? bySlug.get(want.slug);
      if (!hit || used.has(hit.id)) return undefined;
      used.add(hit.id);
      return hit;
    },
    unmatched: () => current.filter((c) => !used.has(c.id)),
  };
}

function planRoutes(want: ApiConfig, have: CurrentApi): Change[] {
  const out: Change[] = [];
  const byId = new Map(have.routes.map((r) => [r.id, r]));
  const byKey = new Map(have.routes.map((r) => [routeKey(r), r]));
  const used = new Set<string>();
  const updates: Change[] = [];
  const creates: Change[] = [];
  for (const raw of want.routes) {
    const r = canonicalRoute(raw);
    let hit: CurrentRoute | undefined = (r.id ? byId.get(r.id) : undefined) ?? byKey.get(routeKey(r));
    if (hit && used.has(hit.id)) hit = undefined;
    if (!hit) {
      creates.push({ kind: 'route.create', apiSlug: want.slug, apiId: have.id, route: r });
      continue;
    }
    used.add(hit.id);
    const changes = diffFields(r, canonicalRoute(hit), ROUTE_FIELDS);
    if (changes.length) updates.push({ kind: 'route.update', apiSlug: want.slug, id: hit.id, route: r, changes });
  }
  // Deletes first: a new route may take the path a removed one frees.
  for (const r of have.routes) if (!used.has(r.id)) out.push({ kind: 'route.delete', apiSlug: want.slug, id: r.id, route: r });
  return [...out, ...updates, ...creates];
}

/**
 * What apply must do to make the workspace look like the file, in a safe order: settings (they
 * gate what targets are allowed), pruned APIs (freeing base paths), API updates then creations,
 * plans (which name APIs that now exist), pruned plans last.
 */
export function planChanges(file: ConfigFile, ws: Workspace, opts: { prune: boolean }): Plan {
  const changes: Change[] = [];
  const kept: Plan['kept'] = [];

  if (file.settings) {
    const want = file.settings as SettingsConfig;
    const fields = (Object.keys(want) as (keyof SettingsConfig)[]).filter((k) => want[k] !== undefined);
    const diff = diffFields(want, ws.settings, fields);
    if (diff.length) changes.push({ kind: 'settings', changes: diff });
  }

  if (file.apis) {
    const m = matcher(ws.apis);
    const updates: Change[] = [];
    const creates: Change[] = [];
    for (const raw of file.apis) {
      const want = canonicalApi(raw);
      const have = m.match(want);
      if (!have) {
        creates.push({ kind: 'api.create', api: want });
        continue;
      }
      const diff = diffFields(want, withFileSecret(have, want), API_FIELDS);
      if (diff.length) updates.push({ kind: 'api.update', api: want, id: have.id, changes: diff });
      updates.push(...planRoutes(want, have));
    }
    for (const gone of m.unmatched()) {
      if (opts.prune) changes.push({ kind: 'api.delete', id: gone.id, slug: gone.slug });
      else kept.push({ kind: 'api', slug: gone.slug });
    }
    changes.push(...updates, ...creates);
  }

  if (file.plans) {
    const archived = new Map(ws.archivedPlans.map((p) => [p.slug, p]));
    const m = matcher(ws.plans);
    const pruned: Change[] = [];
    file.plans.forEach((raw, i) => {
      const want = { ...raw, apis: [...new Set(raw.apis)].sort() };
      const have: CurrentPlan | undefined = m.match(want);
      if (!have) {
        if (archived.has(want.slug) && !(want.id && ws.plans.some((p) => p.id === want.id))) {
          throw new CliError(
            `plans[${i}]: plan ${want.slug} is archived in this workspace; restore it in the console, or give this plan another slug`,
            EXIT.failed,
          );
        }
        changes.push({ kind: 'plan.create', plan: want });
        return;
      }
      const diff = diffFields(want, have, PLAN_FIELDS);
      if (diff.length) changes.push({ kind: 'plan.update', plan: want, id: have.id, changes: diff });
    });
    for (const gone of m.unmatched()) {
      if (opts.prune) pruned.push({ kind: 'plan.delete', id: gone.id, slug: gone.slug });
      else kept.push({ kind: 'plan', slug: gone.slug });
    }
    changes.push(...pruned);
  }
  return { changes, kept };
}
