import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '@tollgate/db';
import { testDb } from '../harness/db';
import { apiInput, call, makeTenant, makeToken, planInput, publicResolver, type TestTenant } from './fixtures';
import { ServiceError } from '../../apps/console/src/server/shared/context';
import * as apis from '../../apps/console/src/server/console/apis';
import * as routes from '../../apps/console/src/server/console/routes';
import * as plans from '../../apps/console/src/server/console/plans';
import * as consumers from '../../apps/console/src/server/console/consumers';
import * as keys from '../../apps/console/src/server/console/keys';
import * as tokens from '../../apps/console/src/server/console/tokens';
import * as members from '../../apps/console/src/server/console/members';
import { createV1Handlers } from '../../apps/console/src/server/console/api/v1';
import { MAX_BODY_BYTES } from '../../apps/console/src/server/console/api/handler';

let db: Db;
let t: TestTenant;
let token: string;
let v1: ReturnType<typeof createV1Handlers>;
const opts = { resolve: publicResolver };
const SCRIPT = '<script>alert(1)</script>';

async function counts() {
  const [a, p, c, k, tk, o, au] = await Promise.all([
    db.api.count({ where: { tenantId: t.tenantId } }),
    db.plan.count({ where: { tenantId: t.tenantId } }),
    db.consumer.count({ where: { tenantId: t.tenantId } }),
    db.apiKey.count({ where: { tenantId: t.tenantId } }),
    db.accessToken.count({ where: { tenantId: t.tenantId } }),
    db.outboxEvent.count({ where: { tenantId: t.tenantId } }),
    db.auditLog.count({ where: { tenantId: t.tenantId } }),
  ]);
  return { a, p, c, k, tk, o, au };
}

async function refused(p: Promise<unknown>, code = 'unprocessable'): Promise<ServiceError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ServiceError);
  expect((err as ServiceError).code).toBe(code);
  return err as ServiceError;
}

beforeAll(async () => {
  db = testDb();
  t = await makeTenant(db);
  token = await makeToken(t, 'ADMIN');
  v1 = createV1Handlers(() => ({ db, log: { error: () => undefined, warn: () => undefined } }), opts);
});
afterAll(async () => {
  await db.$disconnect();
});

describe('hostile input to the services stores nothing', () => {
  it('refuses bad API registrations with a field-level 422', async () => {
    const before = await counts();
    const bad: Array<[Record<string, unknown>, string]> = [
      [apiInput({ name: SCRIPT }), 'name'],
      [apiInput({ name: 'x'.repeat(101) }), 'name'],
      [apiInput({ name: 42 }), 'name'],
      [apiInput({ slug: 'Bad Slug!' }), 'slug'],
      [apiInput({ basePath: 'no-slash' }), 'basePath'],
      [apiInput({ basePath: '/a/../etc' }), 'basePath'],
      [apiInput({ basePath: '/' + 'a'.repeat(200) }), 'basePath'],
      [apiInput({ targets: [] }), 'targets'],
      [apiInput({ targets: 'http://x' }), 'targets'],
      [apiInput({ targets: Array.from({ length: 11 }, () => ({ url: 'https://a.example' })) }), 'targets'],
      [apiInput({ targets: [{ url: 'https://a.example', weight: -1 }] }), 'targets.0.weight'],
      [apiInput({ connectTimeoutMs: '5000' }), 'connectTimeoutMs'],
      [apiInput({ requestTimeoutMs: 10_000_000 }), 'requestTimeoutMs'],
      [apiInput({ authMode: 'BASIC' }), 'authMode'],
      [apiInput({ unexpected: true }), '_'],
      [apiInput({ description: 'x'.repeat(5000) }), 'description'],
    ];
    for (const [input, field] of bad) {
      const err = await refused(apis.createApi(t.owner, input, opts));
      expect(Object.keys(err.fields ?? {}).join(','), JSON.stringify(input).slice(0, 80)).toContain(field);
    }
    expect(await counts()).toEqual(before);
  });

  it.each([
    'http://169.254.169.254/',
    'http://[::1]/',
    'http://10.0.0.1',
    'http://127.0.0.1:8080',
    'http://localhost:4010',
    'http://[fd00:ec2::254]/',
    'file:///etc/passwd',
  ])('refuses upstream %s for a tenant that has not allowed private targets', async (url) => {
    const before = await counts();
    const err = await refused(apis.createApi(t.owner, apiInput({ targets: [{ url, weight: 1 }] }), opts));
    expect(err.fields?.['targets.0.url']).toBeTruthy();
    expect(await counts()).toEqual(before);
  });

  it('refuses SSRF targets on update too, and a name resolving to a private address', async () => {
    const api = await apis.createApi(t.owner, apiInput(), opts);
    const before = await counts();
    await refused(apis.updateApi(t.owner, api.id, { targets: [{ url: 'http://10.0.0.1', weight: 1 }] }, opts));
    await refused(
      apis.updateApi(
        t.owner,
        api.id,
        { targets: [{ url: 'https://sneaky.example', weight: 1 }] },
        { resolve: async () => ['192.168.0.10'] },
      ),
    );
    expect(await counts()).toEqual(before);
    expect((await apis.getApi(t.owner, api.id)).targets[0]!.url).toBe('https://upstream.example.com');
  });

  it('allows loopback upstreams once the tenant allows private targets, but never metadata', async () => {
    const self = await makeTenant(db, { allowPrivateTargets: true });
    const api = await apis.createApi(self.owner, apiInput({ targets: [{ url: 'http://127.0.0.1:4010', weight: 1 }] }));
    expect(api.targets[0]!.url).toBe('http://127.0.0.1:4010');
    await refused(apis.createApi(self.owner, apiInput({ targets: [{ url: 'http://169.254.169.254', weight: 1 }] })));
  });

  it('refuses invalid OpenAPI documents, oversized ones and an OpenAPI URL on a private address', async () => {
    const before = await counts();
    await refused(apis.createApi(t.owner, apiInput({ openapi: { swagger: '2.0' } }), opts));
    await refused(apis.createApi(t.owner, apiInput({ openapi: '{"openapi":"3.1.0"}' }), opts));
    await refused(apis.createApi(t.owner, apiInput({ openapi: 'x'.repeat(1_000_001) }), opts));
    await refused(apis.createApi(t.owner, apiInput({ openapiUrl: 'http://169.254.169.254/openapi.json' }), opts));
    await refused(
      apis.createApi(t.owner, apiInput({ openapiUrl: 'https://docs.example/openapi.json' }), {
        ...opts,
        fetchOpenApi: async () => '<html>',
      }),
    );
    expect(await counts()).toEqual(before);
    const ok = await apis.createApi(t.owner, apiInput({ openapiUrl: 'https://docs.example/openapi.json' }), {
      ...opts,
      fetchOpenApi: async () => JSON.stringify({ openapi: '3.0.3', info: { title: 'T', version: '1' }, paths: {} }),
    });
    expect(ok.openapi).toMatchObject({ info: { title: 'T' } });
  });

  it('refuses bad routes, plans, consumers, keys, tokens and invitations', async () => {
    const api = await apis.createApi(t.owner, apiInput(), opts);
    const plan = await plans.createPlan(t.owner, planInput());
    const issued = await keys.issueKey(t.owner, {});
    const before = await counts();
    const routesBefore = await db.route.count({ where: { apiId: api.id } });
    for (const r of [
      { path: 'nope' },
      { path: '/a b' },
      { path: '/a', methods: ['FETCH'] },
      { path: '/a', cacheTtlSeconds: -1 },
      { path: '/a', rateLimit: { limit: 0, windowSeconds: 1 } },
      { path: '/' + 'a'.repeat(300) },
    ]) {
      await refused(routes.createRoute(t.owner, api.id, r));
    }
    expect(await db.route.count({ where: { apiId: api.id } })).toBe(routesBefore);
    for (const p of [
      planInput({ name: SCRIPT }),
      planInput({ rateLimit: 1.5 }),
      planInput({ rateLimit: 'lots' }),
      planInput({ flatFeeMinor: 9.99 }),
      planInput({ flatFeeMinor: -1 }),
      planInput({ rateAlgorithm: 'LEAKY' }),
      planInput({ trialDays: 1000 }),
      planInput({ quotaMode: 'OVERAGE', monthlyQuota: null }),
      planInput({
        tiers: [
          { upTo: 100, unitPriceMinor: 1 },
          { upTo: 50, unitPriceMinor: 1 },
          { upTo: null, unitPriceMinor: 1 },
        ],
      }),
      planInput({ apiIds: ['api_notreal'] }),
    ]) {
      await refused(plans.createPlan(t.owner, p));
    }
    await refused(plans.updatePlan(t.owner, plan.id, { monthlyQuota: -5 }));
    await refused(consumers.createConsumer(t.owner, { email: 'not-an-email', name: 'x' }));
    await refused(consumers.createConsumer(t.owner, { email: 'a@b.example', name: SCRIPT }));
    await refused(keys.issueKey(t.owner, { name: SCRIPT }));
    await refused(keys.issueKey(t.owner, { env: 'prod' }));
    await refused(keys.issueKey(t.owner, { expiresAt: '2001-01-01T00:00:00Z' }));
    await refused(keys.issueKey(t.owner, { rateLimitOverride: 0 }));
    await refused(keys.rollKey(t.owner, issued.key.id, { graceSeconds: 10 * 365 * 86_400 }));
    await refused(keys.updateKey(t.owner, issued.key.id, { quotaOverride: 'many' }));
    await refused(tokens.createAccessToken(t.owner, { name: SCRIPT }));
    await refused(members.inviteMember(t.owner, { email: 'x@y.example', role: 'GOD' }, 'http://c'));
    expect(await counts()).toEqual(before);
  });
});

describe('hostile input to the admin API', () => {
  it('answers 400 for non-JSON, wrong content type and non-object bodies', async () => {
    const before = await counts();
    expect((await call(v1.apis.POST, { method: 'POST', token, rawBody: '{not json' })).status).toBe(400);
    expect((await call(v1.apis.POST, { method: 'POST', token, rawBody: '[1,2]' })).status).toBe(400);
    expect(
      (
        await call(v1.apis.POST, {
          method: 'POST',
          token,
          rawBody: 'name=x',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        })
      ).status,
    ).toBe(400);
    expect((await call(v1.apis.POST, { method: 'POST', token })).status).toBe(400);
    expect(await counts()).toEqual(before);
  });

  it('answers 413 for an oversized body, whatever content-length claims', async () => {
    const huge = JSON.stringify({ ...apiInput(), description: 'x'.repeat(MAX_BODY_BYTES) });
    const res = await call(v1.apis.POST, { method: 'POST', token, rawBody: huge });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('payload_too_large');
    const lying = await call(v1.apis.POST, {
      method: 'POST',
      token,
      rawBody: huge,
      headers: { 'content-length': '10', 'content-type': 'application/json' },
    });
    expect([400, 413]).toContain(lying.status);
  });

  it('answers 422 naming the field for wrong types, scripts and SSRF URLs, and stores nothing', async () => {
    const before = await counts();
    const cases = [
      [v1.apis.POST, apiInput({ name: SCRIPT }), 'name'],
      [v1.apis.POST, apiInput({ retries: 'three' }), 'retries'],
      [v1.apis.POST, apiInput({ targets: [{ url: 'http://169.254.169.254/', weight: 1 }] }), 'targets.0.url'],
      [v1.apis.POST, apiInput({ targets: [{ url: 'http://[::1]/', weight: 1 }] }), 'targets.0.url'],
      [v1.apis.POST, apiInput({ targets: [{ url: 'http://10.0.0.1', weight: 1 }] }), 'targets.0.url'],
      [v1.apis.POST, apiInput({ openapi: { openapi: '3.1.0', info: { title: 'x', version: '1' }, paths: { bad: {} } } }), 'openapi'],
      [v1.plans.POST, planInput({ rateLimit: '10' }), 'rateLimit'],
      [v1.consumers.POST, { email: 'x@y.example', name: ['array'] }, 'name'],
      [v1.keys.POST, { name: SCRIPT }, 'name'],
    ] as const;
    for (const [handler, body, field] of cases) {
      const res = await call(handler, { method: 'POST', token, body });
      expect(res.status, JSON.stringify(body).slice(0, 100)).toBe(422);
      expect(res.body.error).toMatchObject({ code: 'unprocessable', message: expect.any(String), requestId: expect.any(String) });
      expect(res.body.error.fields[field]).toBeTruthy();
    }
    expect(await counts()).toEqual(before);
  });

  it('answers 401 without a token, with a malformed one, a revoked one and an expired one', async () => {
    expect((await call(v1.apis.GET, {})).status).toBe(401);
    expect((await call(v1.apis.GET, { token: 'tgat_' + 'x'.repeat(500) })).status).toBe(401);
    expect((await call(v1.apis.GET, { token: "' OR 1=1 --" })).status).toBe(401);
    const { token: tk, secret } = await tokens.createAccessToken(t.owner, { name: 'short-lived' });
    expect((await call(v1.apis.GET, { token: secret })).status).toBe(200);
    await tokens.revokeAccessToken(t.owner, tk.id);
    const res = await call(v1.apis.GET, { token: secret });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('unauthorized');
    const other = await tokens.createAccessToken(t.owner, { name: 'expired' });
    await db.accessToken.update({ where: { id: other.token.id }, data: { expiresAt: new Date(Date.now() - 1000) } });
    expect((await call(v1.apis.GET, { token: other.secret })).status).toBe(401);
  });

  it('answers 422 for bad pagination and usage parameters, and 404 for unknown endpoints and malformed ids', async () => {
    expect((await call(v1.apis.GET, { token, query: 'limit=100000' })).status).toBe(422);
    expect((await call(v1.apis.GET, { token, query: "cursor=' OR 1=1" })).status).toBe(422);
    expect((await call(v1.usage.GET, { token, query: 'range=5y' })).status).toBe(422);
    expect((await call(v1.usage.GET, { token, query: 'from=2020-01-01&to=2021-01-01' })).status).toBe(422);
    expect((await call(v1.usage.GET, { token, query: 'granularity=minute&range=90d' })).status).toBe(422);
    expect((await call(v1.api.GET, { token, params: { id: '../../etc/passwd' } })).status).toBe(404);
    expect((await call(v1.notFound, { token })).status).toBe(404);
  });
});
