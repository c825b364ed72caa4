import { describe, expect, it } from 'vitest';
import { createKeyspace, decodeEvent, encodeEvent, KeyRecord, PolicySnapshot } from './index';

const snapshot = {
  schemaVersion: 1,
  tenantId: 'ten_1',
  tenantSlug: 'acme',
  version: 3,
  publishedAt: new Date().toISOString(),
  hosts: ['api.acme.test'],
  apis: [
    {
      id: 'api_1',
      slug: 'echo',
      name: 'Echo',
      basePath: '/echo',
      version: 'v1',
      authMode: 'api_key',
      allowQueryKey: false,
      failMode: 'open',
      loadBalancing: 'round_robin',
      timeouts: { connectMs: 1000, headersMs: 5000, requestMs: 10000 },
      retries: 1,
      jwt: null,
      targets: [{ id: 'tgt_1', url: 'http://127.0.0.1:9999', weight: 1, healthCheck: null }],
      routes: [{ id: 'rte_1', methods: ['GET'], path: '/*', timeoutMs: null, cacheTtlSeconds: 0, transform: null, rateLimit: null }],
    },
  ],
  plans: [
    {
      id: 'pln_1',
      slug: 'free',
      name: 'Free',
      rateLimit: { limit: 10, windowSeconds: 1, algorithm: 'sliding_window' },
      quota: { limit: 1000, mode: 'hard_cap' },
      apiIds: ['api_1'],
    },
  ],
};

describe('PolicySnapshot', () => {
  it('accepts a complete snapshot', () => {
    expect(PolicySnapshot.parse(snapshot).version).toBe(3);
  });
  it('rejects an unknown schema version and bad upstream URLs', () => {
    expect(PolicySnapshot.safeParse({ ...snapshot, schemaVersion: 2 }).success).toBe(false);
    const bad = structuredClone(snapshot);
    bad.apis[0]!.targets[0]!.url = 'not a url';
    expect(PolicySnapshot.safeParse(bad).success).toBe(false);
  });
});

describe('KeyRecord', () => {
  it('round-trips through JSON', () => {
    const rec = {
      schemaVersion: 1,
      keyId: 'key_1',
      tenantId: 'ten_1',
      consumerId: 'con_1',
      subscriptionId: 'sub_1',
      planId: 'pln_1',
      status: 'active',
      subscriptionStatus: 'active',
      expiresAt: null,
      apiIds: [],
      scopes: [],
      rateLimitOverride: null,
      quotaOverride: null,
      periodStart: 0,
      periodEnd: 1,
    };
    expect(KeyRecord.parse(JSON.parse(JSON.stringify(rec)))).toEqual(rec);
  });
});

describe('events', () => {
  it('encodes and decodes each event type', () => {
    const hash = 'a'.repeat(64);
    for (const e of [
      { type: 'policy.updated', tenantId: 't', version: 2 },
      { type: 'key.updated', hash },
      { type: 'key.revoked', hash },
      { type: 'tenant.deleted', tenantId: 't' },
    ] as const) {
      expect(decodeEvent(encodeEvent(e))).toEqual(e);
    }
  });
  it('turns garbage into null instead of throwing', () => {
    expect(decodeEvent('{')).toBeNull();
    expect(decodeEvent('{"type":"key.revoked","hash":"../../etc"}')).toBeNull();
    expect(decodeEvent('"x"'.repeat(10))).toBeNull();
  });
});

describe('createKeyspace', () => {
  it('builds the documented keys with hash tags on counters', () => {
    const ks = createKeyspace();
    expect(ks.policy('ten_1')).toBe('tg:policy:ten_1');
    expect(ks.policyVersions).toBe('tg:policy:versions');
    expect(ks.key('ab')).toBe('tg:key:ab');
    expect(ks.eventsChannel).toBe('tg:events');
    expect(ks.rate('key_1', 'plan')).toBe('tg:rl:{key_1}:plan');
    expect(ks.quota('sub_1', 0)).toBe('tg:quota:{sub_1}:0');
  });
  it('refuses key parts that could escape their namespace', () => {
    const ks = createKeyspace('test_run');
    expect(() => ks.policy('a b')).toThrow();
    expect(() => ks.key('x'.repeat(500))).toThrow();
    expect(() => ks.rate('{evil}', 'x')).toThrow();
    expect(() => createKeyspace('bad prefix')).toThrow();
  });
});

describe('isGatewayOwnedHeader', () => {
  it('claims framing, hop-by-hop, derived and identity headers in any case, and nothing else', async () => {
    const { isGatewayOwnedHeader } = await import('./headers');
    for (const h of [
      'Host',
      'Content-Length',
      'TRANSFER-ENCODING',
      'connection',
      'X-Forwarded-For',
      'x-tollgate-consumer',
      'X-Request-Id',
    ]) {
      expect(isGatewayOwnedHeader(h), h).toBe(true);
    }
    for (const h of ['x-custom', 'accept', 'cache-control', 'x-tollgat']) expect(isGatewayOwnedHeader(h), h).toBe(false);
  });
});
