import { LineCounter, parseDocument, stringify, isMap, type Document } from 'yaml';
import type { z } from 'zod';
import {
  API_FIELDS,
  ConfigFile,
  PLAN_FIELDS,
  ROUTE_FIELDS,
  type ApiConfig,
  type ConfigFile as Config,
  type PlanConfig,
  type RouteConfig,
} from './config-schema';
import { CliError, EXIT } from './errors';

/** Larger than any real workspace's file; a bigger one is refused before parsing. */
export const MAX_FILE_BYTES = 5 * 1024 * 1024;
const ENV_REF = /^\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}$/;

export type LoadOptions = { env?: Record<string, string | undefined>; source?: string };

/**
 * Parses and validates a configuration file. Every problem becomes one line naming the place
 * (`file:line: path: message`), never a stack trace: YAML syntax, aliases bombs, duplicate
 * keys, unknown or mistyped fields, dangling references, unset ${env:NAME} secrets.
 */
export function parseConfig(text: string, opts: LoadOptions = {}): Config {
  const source = opts.source ?? 'the file';
  if (Buffer.byteLength(text, 'utf8') > MAX_FILE_BYTES) throw invalid(`${source} is larger than ${MAX_FILE_BYTES} bytes`);
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true, strict: true, schema: 'core', merge: false });
  const yamlErrors = [...doc.errors, ...doc.warnings];
  if (yamlErrors.length > 0) {
    throw invalid(
      yamlErrors
        .slice(0, 5)
        .map((e) => `${source}:${e.linePos?.[0]?.line ?? '?'}: ${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`)
        .join('\n'),
    );
  }
  if (doc.contents === null) throw invalid(`${source} is empty: expected a mapping that starts with "version: 1"`);
  if (!isMap(doc.contents)) throw invalid(`${source}:1: expected a mapping (key: value) at the top, starting with "version: 1"`);
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 50 });
  } catch (err) {
    throw invalid(`${source}: ${(err as Error).message.split('\n')[0]}`);
  }
  const missing: string[] = [];
  const resolved = substituteEnv(raw, opts.env ?? process.env, missing, []);
  if (missing.length > 0) throw invalid(missing.map((m) => `${source}: ${m}`).join('\n'));

  const res = ConfigFile.safeParse(resolved);
  if (!res.success) throw invalid(formatIssues(res.error.issues, doc, lineCounter, source));
  const problems = checkReferences(res.data);
  if (problems.length > 0) {
    throw invalid(problems.map((p) => `${source}:${lineOf(doc, lineCounter, p.path)}: ${pathText(p.path)}: ${p.message}`).join('\n'));
  }
  return res.data;
}

function invalid(message: string): CliError {
  return new CliError(message, EXIT.dataError);
}

/** Replaces every string that is exactly ${env:NAME} by that variable; an unset one is an error. */
function substituteEnv(v: unknown, env: Record<string, string | undefined>, missing: string[], path: (string | number)[]): unknown {
  if (typeof v === 'string') {
    const m = ENV_REF.exec(v);
    if (!m) return v;
    const value = env[m[1]!];
    if (value === undefined || value === '') missing.push(`${pathText(path)}: the environment variable ${m[1]} is not set`);
    return value ?? '';
  }
  if (Array.isArray(v)) return v.map((x, i) => substituteEnv(x, env, missing, [...path, i]));
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, substituteEnv(x, env, missing, [...path, k])]));
  }
  return v;
}

export function pathText(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(top)';
}

function lineOf(doc: Document, lc: LineCounter, path: readonly PropertyKey[]): number | string {
  // The deepest node that exists: for a missing key, its parent mapping.
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n) as unknown[], true) as { range?: [number, number, number] } | undefined;
    if (node?.range) return lc.linePos(node.range[0]).line;
  }
  return '?';
}

function formatIssues(issues: z.core.$ZodIssue[], doc: Document, lc: LineCounter, source: string): string {
  const lines = issues.slice(0, 10).map((i) => {
    const where = `${source}:${lineOf(doc, lc, i.path)}`;
    if (i.code === 'unrecognized_keys') {
      return `${where}: ${pathText(i.path)}: unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => JSON.stringify(k)).join(', ')}`;
    }
    return `${where}: ${pathText(i.path)}: ${i.message}`;
  });
  if (issues.length > 10) lines.push(`… and ${issues.length - 10} more problems`);
  return lines.join('\n');
}

type Problem = { path: (string | number)[]; message: string };

/** What a schema can't say: unique slugs, base paths and routes, plans naming APIs that exist. */
function checkReferences(c: Config): Problem[] {
  const problems: Problem[] = [];
  const dupes = <T>(items: T[] | undefined, key: (x: T) => string, section: string, what: string) => {
    const seen = new Map<string, number>();
    items?.forEach((x, i) => {
      const k = key(x);
      if (seen.has(k)) problems.push({ path: [section, i], message: `${what} ${k} is already used by ${section}[${seen.get(k)}]` });
      else seen.set(k, i);
    });
  };
  dupes(c.apis, (a) => a.slug, 'apis', 'slug');
  dupes(c.apis, (a) => normaliseBasePath(a.basePath), 'apis', 'base path');
  dupes(c.plans, (p) => p.slug, 'plans', 'slug');
  c.apis?.forEach((a, i) => {
    const seen = new Map<string, number>();
    a.routes.forEach((r, j) => {
      const k = routeKey(r);
      if (seen.has(k))
        problems.push({ path: ['apis', i, 'routes', j], message: `route ${k} is already defined by routes[${seen.get(k)}]` });
      else seen.set(k, j);
    });
    if (a.authMode === 'JWT' && !a.jwt?.jwksUrl && !a.jwt?.key) {
      problems.push({ path: ['apis', i, 'jwt'], message: 'a JWT API needs jwt.jwksUrl or jwt.key' });
    }
    if (a.authMode === 'INTROSPECTION' && !a.introspection) {
      problems.push({ path: ['apis', i, 'introspection'], message: 'an INTROSPECTION API needs introspection settings' });
    }
  });
  if (c.apis && c.plans) {
    const slugs = new Set(c.apis.map((a) => a.slug));
    c.plans.forEach((p, i) =>
      p.apis.forEach((s, j) => {
        if (!slugs.has(s)) problems.push({ path: ['plans', i, 'apis', j], message: `names API ${s}, which is not in apis` });
      }),
    );
  }
  return problems;
}

export function normaliseBasePath(p: string): string {
  return p.length > 1 ? p.replace(/\/$/, '') : p;
}

/** A route's identity when the file gives no id: its path and its (sorted) methods. */
export function routeKey(r: Pick<RouteConfig, 'path' | 'methods'>): string {
  return `${[...new Set(r.methods)].sort().join(',') || '*'} ${r.path}`;
}

// ─── writing ───────────────────────────────────────────────────────────────────────────

/** Sorted keys, recursively: free-form mappings (headers, OpenAPI documents) print the same every time. */
export function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

/** Keys in the schema's order, so two exports of one workspace are byte-identical. */
function ordered<T extends object>(value: T, order: readonly (keyof T)[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of order) if (value[k] !== undefined) out[k as string] = value[k];
  return out;
}

const API_ORDER = ['id', ...API_FIELDS, 'routes'] as const satisfies readonly (keyof ApiConfig)[];
const ROUTE_ORDER = ['id', ...ROUTE_FIELDS] as const;
const PLAN_ORDER = ['id', ...PLAN_FIELDS] as const satisfies readonly (keyof PlanConfig)[];
const RATE_ORDER = ['limit', 'windowSeconds', 'algorithm'] as const;
const IP_ORDER = ['allow', 'deny'] as const;

export function renderConfig(c: Config, opts: { schemaRef: string }): string {
  const doc = ordered(
    {
      version: c.version,
      settings: c.settings ? ordered(c.settings, ['currency', 'allowPrivateTargets', 'requireDeveloperApproval']) : undefined,
      apis: c.apis?.map((a) => ({
        ...ordered(a, API_ORDER),
        jwt: a.jwt
          ? ordered(a.jwt, [
              'issuer',
              'audience',
              'jwksUrl',
              'key',
              'algorithms',
              'forwardClaims',
              'requireExp',
              'maxLifetimeSeconds',
              'consumerClaim',
            ])
          : null,
        introspection: a.introspection
          ? ordered(a.introspection, ['endpoint', 'clientId', 'clientSecret', 'cacheMaxTtlSeconds', 'requiredScopes', 'consumerClaim'])
          : null,
        openapi: a.openapi ? sortKeys(a.openapi) : null,
        cors: a.cors ? ordered(a.cors, ['origins', 'methods', 'headers', 'exposedHeaders', 'credentials', 'maxAgeSeconds']) : null,
        ipRules: a.ipRules ? ordered(a.ipRules, IP_ORDER) : null,
        perIpRateLimit: a.perIpRateLimit ? ordered(a.perIpRateLimit, RATE_ORDER) : null,
        circuitBreaker: a.circuitBreaker
          ? ordered(a.circuitBreaker, ['failureRatio', 'minRequests', 'windowSeconds', 'openSeconds', 'halfOpenProbes'])
          : null,
        targets: a.targets.map((t) => ordered(t, ['url', 'weight', 'sandbox', 'healthCheckPath'])),
        routes: a.routes.map((r) => ({
          ...ordered(r, ROUTE_ORDER),
          rateLimit: r.rateLimit ? ordered(r.rateLimit, RATE_ORDER) : null,
          sharedRateLimit: r.sharedRateLimit ? ordered(r.sharedRateLimit, RATE_ORDER) : null,
          transform: r.transform ? sortKeys(r.transform) : null,
        })),
      })),
      plans: c.plans?.map((p) => ({ ...ordered(p, PLAN_ORDER), ipRules: p.ipRules ? ordered(p.ipRules, IP_ORDER) : null })),
    },
    ['version', 'settings', 'apis', 'plans'],
  );
  const header = [
    `# yaml-language-server: $schema=${opts.schemaRef}`,
    '# Tollgate workspace configuration: `tollgate diff <file>` shows what `tollgate apply <file>` would change.',
    '# Secrets are never exported: a value written as ${env:NAME} is read from that environment variable.',
  ];
  return `${header.join('\n')}\n${stringify(doc, { lineWidth: 0, aliasDuplicateObjects: false, nullStr: 'null' })}`;
}
