import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileTenantPolicy, type Db } from '@tollgate/db';
import { subjectBindingHash } from '@tollgate/policy';
import { testDb } from '../harness/db';
import { apiInput, call, failure, makeTenant, makeToken, planInput, publicResolver, type TestTenant } from './fixtures';
import { createApi, getApi, listApis, updateApi } from '../../apps/console/src/server/console/apis';
import { createPlan } from '../../apps/console/src/server/console/plans';
import { createConsumer } from '../../apps/console/src/server/console/consumers';
import { revokeKey } from '../../apps/console/src/server/console/keys';
import { bindSubject } from '../../apps/console/src/server/console/subject-bindings';
import { createV1Handlers } from '../../apps/console/src/server/console/api/v1';
import { buildOpenApiDocument } from '../../apps/console/src/server/console/api/openapi-doc';
import { introspectionConfigFrom, jwtConsumerClaimFrom, lifecycleFrom } from '../../apps/console/src/server/console/form-inputs-oauth';

function form(entries: Array<[string, string]>): FormData {
  const fd = new FormData();
  for (const [k, v] of entries) fd.append(k, v);
  return fd;
}

// Introspection settings, API lifecycle dates and subject bindings in the control plane (ADR 0028).

let db: Db;
let a: TestTenant;
let b: TestTenant;
const opts = { resolve: publicResolver };
const privateResolver = async (host: string) => (host === 'auth.internal.example' ? ['10.0.0.7'] : ['93.184.216.34']);
const introspection = (over: Record<string, unknown> = {}) => ({
  endpoint: 'https://auth.example.com/oauth2/introspect',
  clientId: 'gateway',
  clientSecret: 'top-secret-value',
  consumerClaim: 'client_id',
  ...over,
});

beforeAll(async () => {
  db = testDb();
  a = await makeTenant(db);
  b = await makeTenant(db);
});
afterAll(async () => {
  await db.$disconnect();
});

describe('introspection settings', () => {
  it('stores and publishes the settings but never answers with the client secret', async () => {
    const api = await createApi(a.owner, apiInput({ authMode: 'INTROSPECTION', introspectionConfig: introspection() }), opts);
    expect(api.introspectionConfig).toEqual({
      endpoint: 'https://auth.example.com/oauth2/introspect',
      clientId: 'gateway',
      clientSecretSet: true,
      cacheMaxTtlSeconds: 60,
      requiredScopes: [],
      consumerClaim: 'client_id',
    });
    expect(JSON.stringify(await getApi(a.owner, api.id))).not.toContain('top-secret-value');
    expect(JSON.stringify(await listApis(a.owner))).not.toContain('top-secret-value');
    const v1 = createV1Handlers(() => ({ db, log: { error: () => undefined, warn: () => undefined } }), opts);
    const res = await call(v1.api.GET, { token: await makeToken(a, 'ADMIN'), params: { id: api.id } });
    expect(res.status).toBe(200);
    expect(JSON.stringify(res.body)).not.toContain('top-secret-value');

    // An update without the secret keeps the stored one.
    await updateApi(a.owner, api.id, { introspectionConfig: introspection({ clientSecret: undefined, cacheMaxTtlSeconds: 5 }) }, opts);
    const snap = await compileTenantPolicy(db, a.tenantId);
    const published = snap!.apis.find((x) => x.id === api.id)!;
    expect(published.authMode).toBe('introspection');
    expect(published.introspection).toMatchObject({ clientSecret: 'top-secret-value', cacheMaxTtlSeconds: 5, consumerClaim: 'client_id' });
  });

  it('refuses a private or metadata endpoint, a missing secret and hostile values', async () => {
    const priv = await failure(
      createApi(
        a.owner,
        apiInput({ authMode: 'INTROSPECTION', introspectionConfig: introspection({ endpoint: 'https://auth.internal.example/i' }) }),
        {
          resolve: privateResolver,
        },
      ),
    );
    expect(priv.fields).toHaveProperty(['introspectionConfig.endpoint']);
    const meta = await failure(
      createApi(
        a.owner,
        apiInput({ authMode: 'INTROSPECTION', introspectionConfig: introspection({ endpoint: 'http://169.254.169.254/i' }) }),
        opts,
      ),
    );
    expect(meta.code).toBe('unprocessable');
    const noSecret = await failure(
      createApi(a.owner, apiInput({ authMode: 'INTROSPECTION', introspectionConfig: introspection({ clientSecret: undefined }) }), opts),
    );
    expect(noSecret.fields).toEqual({ 'introspectionConfig.clientSecret': 'is required' });
    for (const bad of [
      { clientId: 'a\u0000b' },
      { cacheMaxTtlSeconds: 10_000 },
      { consumerClaim: 'a b' },
      { requiredScopes: ['x"y'] },
      { extra: 1 },
    ]) {
      const err = await failure(createApi(a.owner, apiInput({ authMode: 'INTROSPECTION', introspectionConfig: introspection(bad) }), opts));
      expect(err.code, JSON.stringify(bad)).toBe('unprocessable');
    }
  });
});

describe('API lifecycle dates', () => {
  it('publishes deprecation, sunset and link; refuses a link that would break the header', async () => {
    const api = await createApi(
      a.owner,
      apiInput({ deprecatedAt: '2026-01-01T00:00:00Z', sunsetAt: '2027-01-01T00:00:00Z', deprecationLink: 'https://docs.example.com/v2' }),
      opts,
    );
    const snap = await compileTenantPolicy(db, a.tenantId);
    expect(snap!.apis.find((x) => x.id === api.id)!.lifecycle).toEqual({
      deprecatedAt: Date.UTC(2026, 0, 1),
      sunsetAt: Date.UTC(2027, 0, 1),
      link: 'https://docs.example.com/v2',
    });
    const err = await failure(createApi(a.owner, apiInput({ deprecationLink: 'https://x/<y>' }), opts));
    expect(err.code).toBe('unprocessable');
  });
});

describe('subject bindings', () => {
  it('binds a subject to a consumer and plan as a secretless key, once', async () => {
    const plan = await createPlan(a.owner, planInput());
    const consumer = await createConsumer(a.owner, { email: `c-${Date.now()}@example.com`, name: 'Client A' });
    const bound = await bindSubject(a.owner, { subject: 'client-a', consumerId: consumer.id, planId: plan.id });
    expect(bound.key.prefix).toBe('sub:client-a');
    expect(bound.key.subscriptionId).toMatch(/^sub_/);
    expect(JSON.stringify(bound)).not.toContain(subjectBindingHash(a.tenantId, 'client-a'));
    const row = await db.apiKey.findUnique({ where: { id: bound.key.id } });
    expect(row!.hash).toBe(subjectBindingHash(a.tenantId, 'client-a'));
    expect((await failure(bindSubject(a.owner, { subject: 'client-a', consumerId: consumer.id }))).code).toBe('conflict');
    // Another tenant may bind the same subject value: the hash includes the tenant.
    const other = await bindSubject(b.owner, { subject: 'client-a' });
    expect(other.key.tenantId).toBe(b.tenantId);
    await revokeKey(a.owner, bound.key.id);
  });

  it("refuses hostile subjects, another tenant's consumer and callers without the right", async () => {
    for (const subject of ['', 'a b', 'x'.repeat(257), 'caf\u00e9', 'a\nb']) {
      expect((await failure(bindSubject(a.owner, { subject }))).code, JSON.stringify(subject)).toBe('unprocessable');
    }
    const theirs = await createConsumer(b.owner, { email: `t-${Date.now()}@example.com`, name: 'Theirs' });
    expect((await failure(bindSubject(a.owner, { subject: 'x-1', consumerId: theirs.id }))).code).toBe('not_found');
    expect((await failure(bindSubject(a.ctx('VIEWER'), { subject: 'x-2' }))).code).toBe('forbidden');
    const v1 = createV1Handlers(() => ({ db, log: { error: () => undefined, warn: () => undefined } }), opts);
    const res = await call(v1.subjectBindings.POST, { method: 'POST', token: await makeToken(a, 'ADMIN'), body: { subject: 'via-api' } });
    expect(res.status).toBe(201);
    expect(res.body.key.prefix).toBe('sub:via-api');
    const bad = await call(v1.subjectBindings.POST, { method: 'POST', token: await makeToken(a, 'ADMIN'), rawBody: '{"subject":' });
    expect(bad.status).toBe(400);
    expect(buildOpenApiDocument().paths['/subject-bindings'].post.operationId).toBe('bindSubject');
  });
});

describe('the API form', () => {
  it('reads introspection, consumer claim and deprecation fields; a blank secret keeps the stored one', async () => {
    const fd = form([
      ['introspectionEndpoint', 'https://auth.example.com/introspect'],
      ['introspectionClientId', 'gw'],
      ['introspectionClientSecret', 'form-secret-1'],
      ['introspectionCacheMaxTtlSeconds', '15'],
      ['introspectionRequiredScopes', 'a.read  b.write'],
      ['introspectionConsumerClaim', 'client_id'],
      ['sunsetAt', '2027-06-30'],
      ['deprecatedAt', ''],
      ['jwtConsumerClaim', ' sub '],
    ]);
    expect(jwtConsumerClaimFrom(fd)).toBe('sub');
    const api = await createApi(
      a.owner,
      apiInput({ authMode: 'INTROSPECTION', introspectionConfig: introspectionConfigFrom(fd, 'INTROSPECTION'), ...lifecycleFrom(fd) }),
      opts,
    );
    expect(api.introspectionConfig).toMatchObject({ cacheMaxTtlSeconds: 15, requiredScopes: ['a.read', 'b.write'], clientSecretSet: true });
    expect(api.sunsetAt?.toISOString()).toBe('2027-06-30T00:00:00.000Z');
    expect(api.deprecatedAt).toBeNull();
    const blank = form([
      ['introspectionEndpoint', 'https://auth.example.com/introspect'],
      ['introspectionClientId', 'gw2'],
      ['introspectionClientSecret', ''],
    ]);
    await updateApi(a.owner, api.id, { introspectionConfig: introspectionConfigFrom(blank, 'INTROSPECTION') }, opts);
    const row = await db.api.findUniqueOrThrow({ where: { id: api.id } });
    expect(row.introspectionConfig).toMatchObject({ clientId: 'gw2', clientSecret: 'form-secret-1' });
    // Nothing filled in on a keyed API: the settings are left alone.
    expect(introspectionConfigFrom(form([]), 'API_KEY')).toBeUndefined();
    const hostile = form([
      ['introspectionEndpoint', 'javascript:alert(1)'],
      ['introspectionClientId', 'x'],
      ['introspectionCacheMaxTtlSeconds', 'lots'],
    ]);
    const err = await failure(
      createApi(
        a.owner,
        apiInput({ authMode: 'INTROSPECTION', introspectionConfig: introspectionConfigFrom(hostile, 'INTROSPECTION') }),
        opts,
      ),
    );
    expect(err.code).toBe('unprocessable');
  });
});
