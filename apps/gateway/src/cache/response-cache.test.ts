import { describe, expect, it } from 'vitest';
import type { ApiPolicy, PolicySnapshot } from '@tollgate/policy';
import { buildRouteTable, compileTenant, type CompiledApi } from '../routing/route-table';
import { ResponseCache, type KeyParts } from './response-cache';

function apiPolicy(over: Partial<ApiPolicy> = {}): ApiPolicy {
  return {
    id: 'api_1',
    slug: 'a',
    name: 'A',
    basePath: '/a',
    version: 'v1',
    authMode: 'none',
    allowQueryKey: false,
    failMode: 'open',
    loadBalancing: 'round_robin',
    timeouts: { connectMs: 100, headersMs: 100, requestMs: 100 },
    retries: 0,
    jwt: null,
    targets: [{ id: 't', url: 'http://127.0.0.1:1', weight: 1, healthCheck: null }],
    routes: [{ id: 'r', methods: [], path: '/*', timeoutMs: null, cacheTtlSeconds: 60, transform: null, rateLimit: null }],
    ...over,
  };
}

function tenant(version: number, apis: ApiPolicy[]) {
  const snap: PolicySnapshot = {
    schemaVersion: 1,
    tenantId: 'ten_1',
    tenantSlug: 't',
    version,
    publishedAt: new Date().toISOString(),
    hosts: [],
    allowPrivateTargets: true,
    apis,
    plans: [],
  };
  return compileTenant(snap);
}

const noHeaders = (_name: string): string => '';
const body = (s: string) => ({ status: 200, headers: { 'content-type': 'text/plain' }, body: Buffer.from(s) });

function setup(opts: Partial<{ maxEntries: number; maxBytes: number; maxEntryBytes: number }> = {}) {
  let now = 1_000_000;
  const cache = new ResponseCache({ maxEntries: 100, maxBytes: 1_000_000, maxEntryBytes: 10_000, now: () => now, ...opts });
  const t = tenant(1, [apiPolicy()]);
  const api = t.apis[0]!;
  const key = (path: string, over: Partial<KeyParts> = {}) =>
    cache.primaryKey({ tenantId: 'ten_1', api, routeId: 'r', identity: '', host: 'h', proto: 'http', path, query: '', ...over });
  return { cache, api, t, key, advance: (ms: number) => (now += ms) };
}

function put(
  cache: ResponseCache,
  api: CompiledApi,
  primary: string,
  text: string,
  ttlMs = 60_000,
  vary: string[] = [],
  header: (name: string) => string = noHeaders,
) {
  return cache.store(primary, { tenantId: 'ten_1', api }, vary, header, body(text), ttlMs, 0);
}

describe('ResponseCache', () => {
  it('serves a stored entry until it expires, with its age', () => {
    const { cache, api, key, advance } = setup();
    expect(put(cache, api, key('/x'), 'one', 2_000)).toBe(true);
    expect(cache.lookup(key('/x'), noHeaders)?.body.toString()).toBe('one');
    advance(1_500);
    const e = cache.lookup(key('/x'), noHeaders)!;
    expect(cache.ageSeconds(e)).toBe(1);
    advance(600);
    expect(cache.lookup(key('/x'), noHeaders)).toBeNull();
    expect(cache.size).toBe(0);
  });

  it('keys on identity, host and query', () => {
    const { cache, api, key } = setup();
    put(cache, api, key('/x', { identity: 'x-tollgate-consumer=a\n' }), 'a');
    expect(cache.lookup(key('/x', { identity: 'x-tollgate-consumer=b\n' }), noHeaders)).toBeNull();
    expect(cache.lookup(key('/x'), noHeaders)).toBeNull();
    expect(cache.lookup(key('/x', { identity: 'x-tollgate-consumer=a\n', host: 'other' }), noHeaders)).toBeNull();
    expect(cache.lookup(key('/x', { identity: 'x-tollgate-consumer=a\n', query: 'q=1' }), noHeaders)).toBeNull();
    expect(cache.lookup(key('/x', { identity: 'x-tollgate-consumer=a\n' }), noHeaders)?.body.toString()).toBe('a');
  });

  it('matches Vary variants on request header values', () => {
    const { cache, api, key } = setup();
    const lang = (v: string) => (name: string) => (name === 'accept-language' ? v : '');
    put(cache, api, key('/v'), 'english', 60_000, ['accept-language'], lang('en'));
    put(cache, api, key('/v'), 'french', 60_000, ['accept-language'], lang('fr'));
    expect(cache.lookup(key('/v'), lang('en'))?.body.toString()).toBe('english');
    expect(cache.lookup(key('/v'), lang('fr'))?.body.toString()).toBe('french');
    expect(cache.lookup(key('/v'), lang('de'))).toBeNull();
  });

  it('evicts the least recently used entry past the entry and byte bounds', () => {
    const { cache, api, key } = setup({ maxEntries: 2 });
    put(cache, api, key('/1'), '1');
    put(cache, api, key('/2'), '2');
    cache.lookup(key('/1'), noHeaders);
    put(cache, api, key('/3'), '3');
    expect(cache.lookup(key('/2'), noHeaders)).toBeNull();
    expect(cache.lookup(key('/1'), noHeaders)).not.toBeNull();
    expect(cache.size).toBe(2);

    const small = setup({ maxBytes: 2_000 });
    for (let i = 0; i < 10; i++) put(small.cache, small.api, small.key(`/${i}`), 'x'.repeat(500));
    expect(small.cache.bytes).toBeLessThanOrEqual(2_000);
    expect(small.cache.size).toBeGreaterThan(0);
  });

  it('refuses bodies over the entry limit', () => {
    const { cache, api, key } = setup({ maxEntryBytes: 10 });
    expect(put(cache, api, key('/big'), 'x'.repeat(11))).toBe(false);
    expect(cache.size).toBe(0);
  });

  it('drops an API’s entries when its policy changes, keeps them when another API changed', () => {
    const { cache, api, key } = setup();
    put(cache, api, key('/x'), 'old');
    const other = apiPolicy({ id: 'api_2', basePath: '/b' });
    // Same API policy in a newer tenant version: entries stay.
    const v2 = tenant(2, [apiPolicy(), other]);
    cache.retain(buildRouteTable([v2], 'localhost'));
    const api2 = v2.apis.find((a) => a.id === 'api_1')!;
    const k2 = cache.primaryKey({
      tenantId: 'ten_1',
      api: api2,
      routeId: 'r',
      identity: '',
      host: 'h',
      proto: 'http',
      path: '/x',
      query: '',
    });
    expect(k2).toBe(key('/x'));
    expect(cache.lookup(k2, noHeaders)?.body.toString()).toBe('old');
    // The API itself changed: gone, and a response fetched under the old policy isn't stored.
    const v3 = tenant(3, [apiPolicy({ timeouts: { connectMs: 100, headersMs: 100, requestMs: 200 } }), other]);
    expect(cache.retain(buildRouteTable([v3], 'localhost'))).toBe(1);
    expect(cache.size).toBe(0);
    expect(put(cache, api, key('/x'), 'late')).toBe(false);
    // The tenant is gone: nothing survives.
    const api3 = v3.apis.find((a) => a.id === 'api_1')!;
    cache.store(
      cache.primaryKey({ tenantId: 'ten_1', api: api3, routeId: 'r', identity: '', host: 'h', proto: 'http', path: '/y', query: '' }),
      { tenantId: 'ten_1', api: api3 },
      [],
      noHeaders,
      body('y'),
      60_000,
      0,
    );
    expect(cache.size).toBe(1);
    cache.retain(buildRouteTable([], 'localhost'));
    expect(cache.size).toBe(0);
  });
});
