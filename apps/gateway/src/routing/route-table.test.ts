import { describe, expect, it } from 'vitest';
import { PolicySnapshot, type ApiPolicy } from '@tollgate/policy';
import { buildRouteTable, compileTenant, matchRoute, normalizeHost } from './route-table';

const route = (id: string, path: string, methods: string[] = []) => ({
  id,
  methods,
  path,
  timeoutMs: null,
  cacheTtlSeconds: 0,
  transform: null,
  rateLimit: null,
});
const api = (id: string, basePath: string, routes: ApiPolicy['routes']): ApiPolicy => ({
  id,
  slug: id,
  name: id,
  basePath,
  version: 'v1',
  authMode: 'none',
  allowQueryKey: false,
  failMode: 'open',
  loadBalancing: 'round_robin',
  timeouts: { connectMs: 100, headersMs: 100, requestMs: 100 },
  retries: 0,
  jwt: null,
  targets: [{ id: 't', url: 'http://127.0.0.1:1/base/', weight: 1, healthCheck: null }],
  routes,
});

const snapshot = PolicySnapshot.parse({
  schemaVersion: 1,
  tenantId: 'ten_1',
  tenantSlug: 'Acme',
  version: 1,
  publishedAt: new Date().toISOString(),
  hosts: ['api.acme.test'],
  apis: [
    api('api_v1', '/v1', [route('all', '/*'), route('user', '/users/:id', ['GET']), route('me', '/users/me', ['GET', 'PUT'])]),
    api('api_admin', '/v1/admin', [route('admin', '/*', ['POST'])]),
    api('api_root', '/', [route('health', '/health', ['GET'])]),
  ],
  plans: [],
});

describe('route table', () => {
  const tenant = compileTenant(snapshot);
  const table = buildRouteTable([tenant], 'localhost');

  it('finds tenants by subdomain and custom host, case-insensitively, ignoring the port', () => {
    expect(table.byHost.get(normalizeHost('ACME.localhost:8080')!)).toBe(tenant);
    expect(table.byHost.get(normalizeHost('api.acme.test.')!)).toBe(tenant);
    expect(table.byHost.get(normalizeHost('other.localhost')!)).toBeUndefined();
    expect(normalizeHost(undefined)).toBeNull();
    expect(normalizeHost('[::1]:80')).toBe('[::1]');
    expect(normalizeHost('acme.localhost:')).toBe('acme.localhost');
    for (const bad of [
      'a@b',
      'user:pw@acme.localhost',
      'acme.localhost/x',
      'acme localhost',
      'acme.localhost:80x',
      ':80',
      '[::1',
      '[::1]x',
      'a:b:c',
      '[zz::1]',
    ])
      expect(normalizeHost(bad)).toBeNull();
  });

  it('prefers the longest base path and the most specific route', () => {
    const a = matchRoute(tenant, 'POST', '/v1/admin/x');
    expect(a.kind === 'match' && a.api.id).toBe('api_admin');
    const me = matchRoute(tenant, 'GET', '/v1/users/me');
    expect(me.kind === 'match' && me.route.id).toBe('me');
    const user = matchRoute(tenant, 'GET', '/v1/users/42');
    expect(user.kind === 'match' && user.route.id).toBe('user');
    expect(user.kind === 'match' && user.rest).toBe('/users/42');
    const any = matchRoute(tenant, 'DELETE', '/v1/users/42');
    expect(any.kind === 'match' && any.route.id).toBe('all');
  });

  it('matches base paths on segment boundaries only', () => {
    const m = matchRoute(tenant, 'GET', '/v10/x');
    expect(m.kind).toBe('no_route'); // falls to the root API, which has no such route
    expect(m.kind !== 'no_api' && m.api.id).toBe('api_root');
  });

  it('reports a method mismatch with the allowed methods', () => {
    const m = matchRoute(tenant, 'GET', '/v1/admin/x');
    expect(m.kind).toBe('method_not_allowed');
    expect(m.kind === 'method_not_allowed' && m.allow).toEqual(['POST']);
  });

  it('compiles upstream targets with their path prefix', () => {
    expect(tenant.apis.find((a) => a.id === 'api_v1')!.balancer.targets[0]).toMatchObject({
      origin: 'http://127.0.0.1:1',
      pathPrefix: '/base',
    });
  });
});

describe('TenantRoutes (one tenant at a time)', () => {
  const make = (tenantId: string, slug: string, hosts: string[], version = 1) =>
    compileTenant(PolicySnapshot.parse({ ...snapshot, tenantId, tenantSlug: slug, hosts, version }));

  it('swaps a tenant without touching the others, and moves its hosts with it', () => {
    const a = make('ten_a', 'a', ['shop.test']);
    const b = make('ten_b', 'b', []);
    const table = buildRouteTable([a, b], 'localhost');
    const a2 = make('ten_a', 'a', ['store.test'], 2);
    expect(table.upsert(a2)).toBe(a);
    expect(table.byHost.get('a.localhost')).toBe(a2);
    expect(table.byHost.get('store.test')).toBe(a2);
    expect(table.byHost.has('shop.test')).toBe(false);
    expect(table.byHost.get('b.localhost')).toBe(b);
    expect(table.remove('ten_a')).toBe(a2);
    expect(table.remove('ten_a')).toBeUndefined();
    expect([...table.byHost.keys()]).toEqual(['b.localhost']);
    expect([...table.tenants.keys()]).toEqual(['ten_b']);
  });

  it("never lets a custom domain take another tenant's subdomain; a shared custom domain passes to the next claimant", () => {
    const a = make('ten_a', 'a', ['b.localhost', 'shared.test']);
    const b = make('ten_b', 'b', ['shared.test']);
    const table = buildRouteTable([a, b], 'localhost');
    expect(table.byHost.get('b.localhost')).toBe(b);
    expect(table.byHost.get('shared.test')).toBe(a);
    table.remove('ten_b');
    expect(table.byHost.get('b.localhost')).toBe(a); // the custom claim is all that is left
    table.upsert(b);
    expect(table.byHost.get('b.localhost')).toBe(b);
    table.remove('ten_a');
    expect(table.byHost.get('shared.test')).toBe(b);
  });
});
