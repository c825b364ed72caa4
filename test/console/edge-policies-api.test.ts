// Issue 19's edge policies through the admin API (ADR 0025): CORS, address rules, the
// per-address limit and the circuit breaker on APIs, scopes and the route-wide limit on routes,
// address rules on plans, scopes and address rules on keys — stored, published, documented, and
// hostile input refused with a 422 naming the field, never a 500.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { compileKeyRecord, compileTenantPolicy, type Db } from '@tollgate/db';
import { testDb } from '../harness/db';
import { apiInput, call, makeTenant, makeToken, planInput, publicResolver, type TestTenant } from './fixtures';
import { createV1Handlers } from '../../apps/console/src/server/console/api/v1';
import { getMetrics } from '../../apps/console/src/server/shared/metrics';
import { updateApi } from '../../apps/console/src/server/console/apis';
import { createRoute } from '../../apps/console/src/server/console/routes';
import { edgePolicyInputFrom } from '../../apps/console/src/server/console/edge-form-inputs';
import { formFieldsFor, routeInputFrom } from '../../apps/console/src/server/console/form-inputs';
import type { ServiceError } from '../../apps/console/src/server/shared/context';

let db: Db;
let t: TestTenant;
let token: string;
let v1: ReturnType<typeof createV1Handlers>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the OpenAPI document, read field by field
let doc: any;
const ajv = new Ajv2020({ strict: false, allErrors: true });
(addFormats as unknown as (a: Ajv2020) => void)(ajv);

const cors = { origins: ['https://app.example.com'], methods: ['GET', 'POST'], headers: ['Content-Type'], credentials: true };
const breaker = { failureRatio: 0.5, minRequests: 20, windowSeconds: 30, openSeconds: 10, halfOpenProbes: 2 };
const rate = { limit: 50, windowSeconds: 1, algorithm: 'gcra' };

function conforms(schema: string, body: unknown) {
  const validate = ajv.compile({ $ref: `#/components/schemas/${schema}`, components: doc.components });
  expect(validate(JSON.parse(JSON.stringify(body))), JSON.stringify(validate.errors)?.slice(0, 400)).toBe(true);
}

beforeAll(async () => {
  db = testDb();
  t = await makeTenant(db);
  token = await makeToken(t, 'ADMIN');
  v1 = createV1Handlers(() => ({ db, log: { error: () => undefined, warn: () => undefined }, metrics: getMetrics() }), {
    resolve: publicResolver,
  });
  doc = await (await v1.openapi(new Request('http://console.test/api/v1/openapi.json'))).json();
});
afterAll(async () => {
  await db.$disconnect();
});

describe('edge policies in the admin API', () => {
  it('sets, publishes and clears CORS, address rules, limits, the breaker, scopes and plan/key rules', async () => {
    const api = await call(v1.apis.POST, {
      method: 'POST',
      token,
      body: apiInput({ cors, ipRules: { deny: ['2001:db8:bad::/48'] }, perIpRateLimit: rate, circuitBreaker: breaker }),
    });
    expect(api.status).toBe(201);
    conforms('Api', api.body);
    expect(api.body.cors).toMatchObject({ ...cors, exposedHeaders: [], maxAgeSeconds: 600 });
    const id = api.body.id as string;

    const route = await call(v1.apiRoutes.POST, {
      method: 'POST',
      token,
      params: { id },
      body: { path: '/orders/*', methods: ['POST'], requiredScopes: ['orders:write', 'orders:write'], sharedRateLimit: rate },
    });
    expect(route.status).toBe(201);
    conforms('Route', route.body);
    expect(route.body.requiredScopes).toEqual(['orders:write']);

    const plan = await call(v1.plans.POST, {
      method: 'POST',
      token,
      body: planInput({ apiIds: [id], ipRules: { allow: ['10.0.0.0/8'] } }),
    });
    expect(plan.status).toBe(201);
    conforms('Plan', plan.body);
    const key = await call(v1.keys.POST, {
      method: 'POST',
      token,
      body: { planId: plan.body.id, scopes: ['orders:write'], ipRules: { deny: ['192.0.2.0/24'] } },
    });
    expect(key.status).toBe(201);
    conforms('Key', key.body.key);
    expect(key.body.key.scopes).toEqual(['orders:write']);

    const snap = await compileTenantPolicy(db, t.tenantId);
    const published = snap!.apis.find((a) => a.id === id)!;
    expect(published.cors?.origins).toEqual(cors.origins);
    expect(published.ipRules).toEqual({ allow: [], deny: ['2001:db8:bad::/48'] });
    expect(published.circuitBreaker).toEqual(breaker);
    expect(published.routes.find((r) => r.path === '/orders/*')).toMatchObject({ requiredScopes: ['orders:write'], sharedRateLimit: rate });
    expect(snap!.plans.find((p) => p.id === plan.body.id)!.ipRules).toEqual({ allow: ['10.0.0.0/8'], deny: [] });
    const rec = await compileKeyRecord(db, key.body.key.id);
    expect(rec).toMatchObject({ scopes: ['orders:write'], ipRules: { allow: [], deny: ['192.0.2.0/24'] } });

    // Scopes can be changed on an existing key; null clears a policy.
    const updated = await call(v1.key.PATCH, {
      method: 'PATCH',
      token,
      params: { id: key.body.key.id },
      body: { scopes: ['a', 'b'], ipRules: null },
    });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ scopes: ['a', 'b'], ipRules: null });
    const cleared = await call(v1.api.PATCH, { method: 'PATCH', token, params: { id }, body: { cors: null, circuitBreaker: null } });
    expect(cleared.status).toBe(200);
    expect(cleared.body).toMatchObject({ cors: null, circuitBreaker: null, perIpRateLimit: rate });
    const after = (await compileTenantPolicy(db, t.tenantId))!.apis.find((a) => a.id === id)!;
    expect(after.cors).toBeUndefined();
    expect(after.circuitBreaker).toBeUndefined();
  });

  it('refuses hostile settings with a 422 that names the field', async () => {
    const cases: { body: Record<string, unknown>; field: string }[] = [
      { body: { cors: { origins: ['*'], credentials: true } }, field: 'cors.origins' },
      { body: { cors: { origins: ['https://a.example/path'] } }, field: 'cors.origins' },
      { body: { cors: { origins: ['https://a.example\r\nSet-Cookie: x=1'] } }, field: 'cors.origins' },
      { body: { cors: { origins: [] } }, field: 'cors.origins' },
      { body: { cors: { origins: ['https://a.example'], headers: ['*'], credentials: true } }, field: 'cors.headers' },
      { body: { cors: { origins: ['https://a.example'], maxAgeSeconds: -1 } }, field: 'cors.maxAgeSeconds' },
      { body: { ipRules: { deny: ['10.0.0.0/33'] } }, field: 'ipRules.deny.0' },
      { body: { ipRules: { allow: ['example.com'] } }, field: 'ipRules.allow.0' },
      { body: { ipRules: { allow: ['1::2::3/64'] } }, field: 'ipRules.allow.0' },
      { body: { ipRules: { deny: Array.from({ length: 5001 }, (_, i) => `10.0.${i >> 8}.${i & 255}`) } }, field: 'ipRules.deny' },
      { body: { ipRules: 'deny all' }, field: 'ipRules' },
      { body: { circuitBreaker: { ...breaker, failureRatio: 0 } }, field: 'circuitBreaker.failureRatio' },
      { body: { circuitBreaker: { ...breaker, failureRatio: 2 } }, field: 'circuitBreaker.failureRatio' },
      { body: { circuitBreaker: { ...breaker, halfOpenProbes: 0 } }, field: 'circuitBreaker.halfOpenProbes' },
      { body: { perIpRateLimit: { limit: 0, windowSeconds: 1 } }, field: 'perIpRateLimit.limit' },
    ];
    for (const c of cases) {
      const res = await call(v1.apis.POST, { method: 'POST', token, body: apiInput(c.body) });
      expect(res.status, JSON.stringify(c.body).slice(0, 100)).toBe(422);
      expect(Object.keys(res.body.error.fields ?? {}), JSON.stringify(res.body).slice(0, 300)).toContain(c.field);
    }
    const api = await call(v1.apis.POST, { method: 'POST', token, body: apiInput() });
    const id = api.body.id as string;
    for (const requiredScopes of [['has space'], ['quote"d'], [''], Array.from({ length: 65 }, (_, i) => `s${i}`), 'orders:write']) {
      const res = await call(v1.apiRoutes.POST, { method: 'POST', token, params: { id }, body: { path: '/x', requiredScopes } });
      expect(res.status, JSON.stringify(requiredScopes).slice(0, 60)).toBe(422);
    }
    const key = await call(v1.keys.POST, { method: 'POST', token, body: { scopes: ['a\nb'] } });
    expect(key.status).toBe(422);
    const keyRules = await call(v1.keys.POST, { method: 'POST', token, body: { ipRules: { deny: ['::ffff:1.2.3/120'] } } });
    expect(keyRules.status).toBe(422);
    const plan = await call(v1.plans.POST, { method: 'POST', token, body: planInput({ ipRules: { allow: ['300.1.1.1'] } }) });
    expect(plan.status).toBe(422);
  });

  it('takes them from the console forms, and names the form field of a bad value', async () => {
    const api = await call(v1.apis.POST, { method: 'POST', token, body: apiInput() });
    const id = api.body.id as string;
    const fd = new FormData();
    for (const [k, v] of Object.entries({
      corsEnabled: 'on',
      corsOrigins: 'https://app.example.com\nhttp://localhost:3000',
      corsMethods: 'get post',
      corsHeaders: 'Content-Type, Authorization',
      corsCredentials: 'on',
      corsMaxAgeSeconds: '120',
      ipAllow: '',
      ipDeny: '203.0.113.0/24\n2001:db8::/32',
      perIpLimit: '30',
      perIpWindowSeconds: '10',
      breakerEnabled: 'on',
      breakerFailurePercent: '40',
      breakerMinRequests: '10',
      breakerWindowSeconds: '20',
      breakerOpenSeconds: '5',
      breakerHalfOpenProbes: '2',
    }))
      fd.set(k, v);
    const saved = await updateApi(t.owner, id, edgePolicyInputFrom(fd), { resolve: publicResolver });
    expect(saved.cors).toMatchObject({
      origins: ['https://app.example.com', 'http://localhost:3000'],
      methods: ['GET', 'POST'],
      maxAgeSeconds: 120,
    });
    expect(saved.ipRules).toEqual({ allow: [], deny: ['203.0.113.0/24', '2001:db8::/32'] });
    expect(saved.perIpRateLimit).toEqual({ limit: 30, windowSeconds: 10, algorithm: 'sliding_window' });
    expect(saved.circuitBreaker).toEqual({ failureRatio: 0.4, minRequests: 10, windowSeconds: 20, openSeconds: 5, halfOpenProbes: 2 });

    // Unticked = off; a bad CIDR or "*" with credentials names the field the form shows it on.
    const off = new FormData();
    expect(await updateApi(t.owner, id, edgePolicyInputFrom(off), { resolve: publicResolver })).toMatchObject({
      cors: null,
      circuitBreaker: null,
    });
    const bad = new FormData();
    bad.set('corsEnabled', 'on');
    bad.set('corsOrigins', '*');
    bad.set('corsCredentials', 'on');
    bad.set('ipDeny', '10.0.0.0/99');
    const err = (await updateApi(t.owner, id, edgePolicyInputFrom(bad), { resolve: publicResolver }).catch(formFieldsFor)) as ServiceError;
    expect(Object.keys(err.fields ?? {})).toEqual(expect.arrayContaining(['corsOrigins', 'ipDeny']));

    const rf = new FormData();
    rf.set('path', '/orders');
    rf.set('requiredScopes', 'orders:write orders:read');
    rf.set('sharedLimit', '100');
    rf.set('sharedWindowSeconds', '1');
    const route = await createRoute(t.owner, id, routeInputFrom(rf));
    expect(route).toMatchObject({ requiredScopes: ['orders:write', 'orders:read'], sharedRateLimit: { limit: 100, windowSeconds: 1 } });
  });
});
