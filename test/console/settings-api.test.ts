// GET/PATCH /api/v1/settings: what the `tollgate` CLI needs to carry workspace settings in a
// configuration file. Admin tokens may change developer approval; the rest stays with owners.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { Db } from '@tollgate/db';
import { testDb } from '../harness/db';
import { call, makeTenant, makeToken, uniq, type TestTenant } from './fixtures';
import { createV1Handlers } from '../../apps/console/src/server/console/api/v1';
import { updateTenant } from '../../apps/console/src/server/console/tenant';

let db: Db;
let a: TestTenant;
let b: TestTenant;
let v1: ReturnType<typeof createV1Handlers>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the OpenAPI document, read field by field
let doc: any;
const ajv = new Ajv2020({ strict: false, allErrors: true });
(addFormats as unknown as (x: Ajv2020) => void)(ajv);

function conforms(method: 'get' | 'patch', res: { status: number; body: unknown }) {
  const schema = doc.paths['/settings'][method].responses[String(res.status)].content['application/json'].schema;
  const validate = ajv.compile({ ...schema, components: doc.components });
  expect(validate(res.body), JSON.stringify(validate.errors)).toBe(true);
}

beforeAll(async () => {
  db = testDb();
  a = await makeTenant(db);
  b = await makeTenant(db);
  v1 = createV1Handlers(() => ({ db, log: { error: () => undefined, warn: () => undefined }, consoleUrl: 'https://console.example.com' }));
  doc = await (await v1.openapi(new Request('http://console.test/api/v1/openapi.json'))).json();
});
afterAll(async () => {
  await db.$disconnect();
});

describe('GET /api/v1/settings', () => {
  it('returns the workspace the token belongs to, with no internals, to any role', async () => {
    const res = await call(v1.settings.GET, { token: await makeToken(a, 'VIEWER') });
    expect(res.status).toBe(200);
    conforms('get', res);
    expect(res.body).toEqual({
      slug: a.slug,
      name: `Tenant ${a.slug}`,
      currency: 'usd',
      allowPrivateTargets: false,
      requireDeveloperApproval: false,
      portalHost: null,
    });
  });

  it('refuses a missing, malformed or revoked token', async () => {
    expect((await call(v1.settings.GET, {})).status).toBe(401);
    expect((await call(v1.settings.GET, { token: 'tgat_nope' })).status).toBe(401);
    const res = await call(v1.settings.GET, { headers: { authorization: 'Basic eDp5' } });
    expect(res.status).toBe(401);
    conforms('get', res);
  });
});

describe('PATCH /api/v1/settings', () => {
  it('lets an admin token turn developer approval on and off, audited and published', async () => {
    const token = await makeToken(a, 'ADMIN');
    const before = await db.outboxEvent.count({ where: { tenantId: a.tenantId, kind: 'policy' } });
    const on = await call(v1.settings.PATCH, { method: 'PATCH', token, body: { requireDeveloperApproval: true } });
    expect(on.status).toBe(200);
    conforms('patch', on);
    expect(on.body.requireDeveloperApproval).toBe(true);
    expect((await db.tenant.findUniqueOrThrow({ where: { id: a.tenantId } })).requireDeveloperApproval).toBe(true);
    expect(await db.auditLog.findFirst({ where: { tenantId: a.tenantId, action: 'tenant.updated', actorType: 'token' } })).toBeTruthy();
    expect(await db.outboxEvent.count({ where: { tenantId: a.tenantId, kind: 'policy' } })).toBe(before + 1);
    const off = await call(v1.settings.PATCH, { method: 'PATCH', token, body: { requireDeveloperApproval: false } });
    expect(off.body.requireDeveloperApproval).toBe(false);
  });

  it('keeps the owner-only settings from tokens, saying which and why, and changes nothing', async () => {
    const token = await makeToken(a, 'ADMIN');
    for (const body of [
      { allowPrivateTargets: true },
      { currency: 'eur' },
      { name: 'Taken over' },
      { portalHost: `dev.${uniq('h')}.example` },
      { requireDeveloperApproval: true, allowPrivateTargets: true },
    ]) {
      const res = await call(v1.settings.PATCH, { method: 'PATCH', token, body });
      expect(res.status, JSON.stringify(body)).toBe(403);
      conforms('patch', res);
      expect(res.body.error.message).toMatch(/needs the owner role; you are admin/);
    }
    const t = await db.tenant.findUniqueOrThrow({ where: { id: a.tenantId } });
    expect(t).toMatchObject({ allowPrivateTargets: false, currency: 'usd', name: `Tenant ${a.slug}`, requireDeveloperApproval: false });
    // An owner (in the console) still can.
    await updateTenant(a.owner, { allowPrivateTargets: true });
    await updateTenant(a.owner, { allowPrivateTargets: false });
  });

  it('refuses developer and viewer tokens', async () => {
    for (const role of ['DEVELOPER', 'VIEWER'] as const) {
      const res = await call(v1.settings.PATCH, {
        method: 'PATCH',
        token: await makeToken(a, role),
        body: { requireDeveloperApproval: true },
      });
      expect(res.status).toBe(403);
    }
  });

  it("acts only on the token's own workspace whatever the body says", async () => {
    const res = await call(v1.settings.PATCH, {
      method: 'PATCH',
      token: await makeToken(b, 'ADMIN'),
      body: { requireDeveloperApproval: true },
      headers: { 'x-tenant-id': a.tenantId },
    });
    expect(res.status).toBe(200);
    expect(res.body.slug).toBe(b.slug);
    expect((await db.tenant.findUniqueOrThrow({ where: { id: a.tenantId } })).requireDeveloperApproval).toBe(false);
    const smuggled = await call(v1.settings.PATCH, {
      method: 'PATCH',
      token: await makeToken(b, 'ADMIN'),
      body: { tenantId: a.tenantId, requireDeveloperApproval: true },
    });
    expect(smuggled.status).toBe(422);
  });

  it('answers hostile or malformed bodies with a 4xx envelope, never a 500', async () => {
    const token = await makeToken(a, 'ADMIN');
    const cases: Array<[Parameters<typeof call>[1], number]> = [
      [{ rawBody: '{"requireDeveloperApproval":', headers: { 'content-type': 'application/json' } }, 400],
      [{ rawBody: '[true]', headers: { 'content-type': 'application/json' } }, 400],
      [{ rawBody: 'requireDeveloperApproval=true', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 400],
      [{ body: { requireDeveloperApproval: 'yes' } }, 422],
      [{ body: { requireDeveloperApproval: true, stripeAccountId: 'acct_evil' } }, 422],
      [{ rawBody: '{"__proto__":{"allowPrivateTargets":true}}', headers: { 'content-type': 'application/json' } }, 422],
      [
        {
          rawBody: JSON.stringify({ requireDeveloperApproval: true, pad: 'x'.repeat(1_600_000) }),
          headers: { 'content-type': 'application/json' },
        },
        413,
      ],
    ];
    for (const [opts, status] of cases) {
      const res = await call(v1.settings.PATCH, { method: 'PATCH', token, ...opts });
      expect(res.status, JSON.stringify(opts).slice(0, 120)).toBe(status);
      if (status >= 400) {
        expect(res.body.error.code).toBeTruthy();
        expect(JSON.stringify(res.body)).not.toMatch(/at \w+ \(|prisma/i);
      }
    }
    const t = await db.tenant.findUniqueOrThrow({ where: { id: a.tenantId } });
    expect(t.stripeAccountId).toBeNull();
    expect(t.allowPrivateTargets).toBe(false);
  });
});
