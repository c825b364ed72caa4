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
import * as tenantSvc from '../../apps/console/src/server/console/tenant';
import { listAuditLogs } from '../../apps/console/src/server/shared/audit';
import { createV1Handlers } from '../../apps/console/src/server/console/api/v1';

let db: Db;
let a: TestTenant;
let b: TestTenant;
// Tenant B's resources, which tenant A must never see.
const B: Record<string, string> = {};
let tokenA: string;
let v1: ReturnType<typeof createV1Handlers>;
const opts = { resolve: publicResolver };

async function expectCode(p: Promise<unknown>, code: string) {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, `expected ${code}`).toBeInstanceOf(ServiceError);
  expect((err as ServiceError).code).toBe(code);
}

beforeAll(async () => {
  db = testDb();
  a = await makeTenant(db);
  b = await makeTenant(db);
  const api = await apis.createApi(b.owner, apiInput(), opts);
  B.api = api.id;
  B.route = (await routes.createRoute(b.owner, api.id, { path: '/items/:id', methods: ['GET'] })).id;
  B.plan = (await plans.createPlan(b.owner, planInput({ apiIds: [api.id] }))).id;
  B.consumer = (await consumers.createConsumer(b.owner, { email: 'dev@b.example', name: 'Dev B' })).id;
  B.key = (await keys.issueKey(b.owner, { name: 'b key', planId: B.plan })).key.id;
  B.token = (await tokens.createAccessToken(b.owner, { name: 'b token' })).token.id;
  B.member = (await db.membership.findFirstOrThrow({ where: { tenantId: b.tenantId, role: 'DEVELOPER' } })).id;
  B.invitation = (await members.inviteMember(b.owner, { email: 'new@b.example', role: 'VIEWER' }, 'http://console.test')).id;
  tokenA = await makeToken(a, 'ADMIN');
  v1 = createV1Handlers(() => ({ db, log: { error: () => undefined, warn: () => undefined } }), opts);
});

afterAll(async () => {
  await db.$disconnect();
});

describe('tenant isolation in the services', () => {
  it("gives tenant A's owner 404 for every read, update and delete of tenant B's ids", async () => {
    const ctx = a.owner;
    const cases: Array<[string, () => Promise<unknown>]> = [
      ['get api', () => apis.getApi(ctx, B.api!)],
      ['update api', () => apis.updateApi(ctx, B.api!, { name: 'hijacked' }, opts)],
      ['delete api', () => apis.deleteApi(ctx, B.api!)],
      ['list routes', () => routes.listRoutes(ctx, B.api!)],
      ['create route on B api', () => routes.createRoute(ctx, B.api!, { path: '/x' })],
      ['get route', () => routes.getRoute(ctx, B.route!)],
      ['update route', () => routes.updateRoute(ctx, B.route!, { path: '/y' })],
      ['delete route', () => routes.deleteRoute(ctx, B.route!)],
      ['get plan', () => plans.getPlan(ctx, B.plan!)],
      ['update plan', () => plans.updatePlan(ctx, B.plan!, { name: 'hijacked' })],
      ['archive plan', () => plans.setPlanArchived(ctx, B.plan!, true)],
      ['delete plan', () => plans.deletePlan(ctx, B.plan!)],
      ['get consumer', () => consumers.getConsumer(ctx, B.consumer!)],
      ['update consumer', () => consumers.updateConsumer(ctx, B.consumer!, { status: 'SUSPENDED' })],
      ['delete consumer', () => consumers.deleteConsumer(ctx, B.consumer!)],
      ['issue key for B consumer', () => keys.issueKey(ctx, { consumerId: B.consumer })],
      ['issue key on B plan', () => keys.issueKey(ctx, { planId: B.plan })],
      ['get key', () => keys.getKey(ctx, B.key!)],
      ['update key', () => keys.updateKey(ctx, B.key!, { name: 'hijacked' })],
      ['roll key', () => keys.rollKey(ctx, B.key!, {})],
      ['revoke key', () => keys.revokeKey(ctx, B.key!)],
      ['revoke token', () => tokens.revokeAccessToken(ctx, B.token!)],
      ['change member role', () => members.changeMemberRole(ctx, B.member!, { role: 'VIEWER' })],
      ['remove member', () => members.removeMember(ctx, B.member!)],
      ['revoke invitation', () => members.revokeInvitation(ctx, B.invitation!)],
    ];
    for (const [name, fn] of cases) {
      const err = await fn().then(
        () => null,
        (e: unknown) => e,
      );
      expect((err as ServiceError | null)?.code, name).toBe('not_found');
    }
    // Nothing of B's changed.
    expect((await apis.getApi(b.owner, B.api!)).name).not.toBe('hijacked');
    expect((await keys.getKey(b.owner, B.key!)).status).toBe('ACTIVE');
    expect((await consumers.getConsumer(b.owner, B.consumer!)).status).toBe('ACTIVE');
    expect(await db.membership.count({ where: { id: B.member } })).toBe(1);
  });

  it("doesn't list tenant B's rows in tenant A's lists, filters or apiIds", async () => {
    const ctx = a.owner;
    expect((await apis.listApis(ctx)).data.map((x) => x.id)).not.toContain(B.api);
    expect((await plans.listPlans(ctx)).data.map((x) => x.id)).not.toContain(B.plan);
    expect((await consumers.listConsumers(ctx, { includeInternal: true })).data.map((x) => x.id)).not.toContain(B.consumer);
    expect((await keys.listKeys(ctx, { consumerId: B.consumer })).data).toEqual([]);
    expect((await tokens.listAccessTokens(ctx)).map((x) => x.id)).not.toContain(B.token);
    expect((await listAuditLogs(ctx, { targetId: B.api })).data).toEqual([]);
    await expectCode(plans.createPlan(ctx, planInput({ apiIds: [B.api] })), 'unprocessable');
    await expectCode(keys.issueKey(ctx, { apiIds: [B.api] }), 'unprocessable');
  });
});

describe('tenant isolation through the admin API', () => {
  it("answers 404 with the error envelope for tenant B's ids on GET, PATCH and DELETE", async () => {
    const cases: Array<[string, (r: Request, c: { params: Promise<never> }) => Promise<Response>, string, unknown?]> = [
      ['api', v1.api.GET, 'GET'],
      ['api', v1.api.PATCH, 'PATCH', { name: 'hijacked' }],
      ['api', v1.api.DELETE, 'DELETE'],
      ['api', v1.apiRoutes.GET, 'GET'],
      ['api', v1.apiRoutes.POST, 'POST', { path: '/x' }],
      ['route', v1.route.GET, 'GET'],
      ['route', v1.route.PATCH, 'PATCH', { path: '/y' }],
      ['route', v1.route.DELETE, 'DELETE'],
      ['plan', v1.plan.GET, 'GET'],
      ['plan', v1.plan.PATCH, 'PATCH', { name: 'hijacked' }],
      ['plan', v1.plan.DELETE, 'DELETE'],
      ['consumer', v1.consumer.GET, 'GET'],
      ['consumer', v1.consumer.PATCH, 'PATCH', { status: 'SUSPENDED' }],
      ['consumer', v1.consumer.DELETE, 'DELETE'],
      ['key', v1.key.GET, 'GET'],
      ['key', v1.key.PATCH, 'PATCH', { name: 'x' }],
      ['key', v1.key.DELETE, 'DELETE'],
      ['key', v1.keyRoll.POST, 'POST'],
    ];
    for (const [kind, handler, method, body] of cases) {
      const res = await call(handler, { method, token: tokenA, params: { id: B[kind]! }, body });
      expect(res.status, `${method} ${kind}`).toBe(404);
      expect(res.body.error).toMatchObject({ code: 'not_found', requestId: expect.any(String) });
    }
    expect((await keys.getKey(b.owner, B.key!)).status).toBe('ACTIVE');
    expect(await db.api.count({ where: { id: B.api } })).toBe(1);
  });

  it("scopes usage queries and list filters to the token's tenant", async () => {
    const res = await call(v1.keys.GET, { token: tokenA, query: `consumerId=${B.consumer}` });
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual([]);
  });
});

describe('roles', () => {
  it('lets a viewer read but not change anything, and stores nothing when refused', async () => {
    const viewer = a.ctx('VIEWER');
    const api = await apis.createApi(a.owner, apiInput(), opts);
    const plan = await plans.createPlan(a.owner, planInput());
    const issued = await keys.issueKey(a.owner, { name: 'k' });
    const consumer = await consumers.createConsumer(a.owner, { email: `c-${Date.now()}@a.example`, name: 'C' });
    const auditBefore = await db.auditLog.count({ where: { tenantId: a.tenantId } });
    const outboxBefore = await db.outboxEvent.count({ where: { tenantId: a.tenantId } });

    await expect(apis.getApi(viewer, api.id)).resolves.toMatchObject({ id: api.id });
    const refused: Array<() => Promise<unknown>> = [
      () => apis.createApi(viewer, apiInput(), opts),
      () => apis.updateApi(viewer, api.id, { name: 'x' }, opts),
      () => apis.deleteApi(viewer, api.id),
      () => routes.createRoute(viewer, api.id, { path: '/a' }),
      () => plans.createPlan(viewer, planInput()),
      () => plans.updatePlan(viewer, plan.id, { name: 'x' }),
      () => plans.deletePlan(viewer, plan.id),
      () => consumers.createConsumer(viewer, { email: 'v@a.example', name: 'V' }),
      () => consumers.updateConsumer(viewer, consumer.id, { status: 'SUSPENDED' }),
      () => keys.issueKey(viewer, {}),
      () => keys.revokeKey(viewer, issued.key.id),
      () => keys.rollKey(viewer, issued.key.id, {}),
      () => keys.updateKey(viewer, issued.key.id, { name: 'x' }),
      () => tokens.createAccessToken(viewer, { name: 't' }),
      () => tokens.listAccessTokens(viewer),
      () => members.inviteMember(viewer, { email: 'x@a.example' }, 'http://c'),
      () => tenantSvc.updateTenant(viewer, { allowPrivateTargets: true }),
    ];
    for (const fn of refused) await expectCode(fn(), 'forbidden');
    expect(await db.auditLog.count({ where: { tenantId: a.tenantId } })).toBe(auditBefore);
    expect(await db.outboxEvent.count({ where: { tenantId: a.tenantId } })).toBe(outboxBefore);
  });

  it('refuses a viewer token on every mutating admin endpoint with 403', async () => {
    const viewerToken = await makeToken(a, 'VIEWER');
    const api = await apis.createApi(a.owner, apiInput(), opts);
    const res = await call(v1.apis.POST, { method: 'POST', token: viewerToken, body: apiInput() });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('forbidden');
    expect((await call(v1.api.DELETE, { method: 'DELETE', token: viewerToken, params: { id: api.id } })).status).toBe(403);
    expect((await call(v1.keys.POST, { method: 'POST', token: viewerToken, body: {} })).status).toBe(403);
    expect((await call(v1.api.GET, { token: viewerToken, params: { id: api.id } })).status).toBe(200);
  });

  it('lets a developer manage APIs and keys but not members, tokens, plans or the workspace', async () => {
    const dev = a.ctx('DEVELOPER');
    const api = await apis.createApi(dev, apiInput(), opts);
    expect(api.id).toMatch(/^api_/);
    expect((await keys.issueKey(dev, { name: 'dev key' })).secret).toMatch(/^tg_live_/);
    const someone = await db.membership.findFirstOrThrow({ where: { tenantId: a.tenantId, role: 'VIEWER' } });
    await expectCode(members.inviteMember(dev, { email: 'x@a.example', role: 'VIEWER' }, 'http://c'), 'forbidden');
    await expectCode(members.changeMemberRole(dev, someone.id, { role: 'ADMIN' }), 'forbidden');
    await expectCode(members.removeMember(dev, someone.id), 'forbidden');
    await expectCode(tokens.createAccessToken(dev, { name: 't', role: 'DEVELOPER' }), 'forbidden');
    await expectCode(plans.createPlan(dev, planInput()), 'forbidden');
    await expectCode(tenantSvc.updateTenant(dev, { name: 'x' }), 'forbidden');
    expect(await db.membership.findUniqueOrThrow({ where: { id: someone.id } })).toMatchObject({ role: 'VIEWER' });
  });

  it('keeps admins from making owners and keeps at least one owner', async () => {
    const t = await makeTenant(db);
    const admin = t.ctx('ADMIN');
    const viewer = await db.membership.findFirstOrThrow({ where: { tenantId: t.tenantId, role: 'VIEWER' } });
    const owner = await db.membership.findFirstOrThrow({ where: { tenantId: t.tenantId, role: 'OWNER' } });
    await expectCode(members.changeMemberRole(admin, viewer.id, { role: 'OWNER' }), 'forbidden');
    await expectCode(members.removeMember(admin, owner.id), 'forbidden');
    await expectCode(members.inviteMember(admin, { email: 'boss@x.example', role: 'OWNER' }, 'http://c'), 'forbidden');
    await expectCode(tokens.createAccessToken(t.ctx('DEVELOPER'), { name: 'x' }), 'forbidden');
    await expectCode(members.changeMemberRole(t.owner, owner.id, { role: 'ADMIN' }), 'conflict');
    await expectCode(members.removeMember(t.owner, owner.id), 'conflict');
    await expect(members.changeMemberRole(admin, viewer.id, { role: 'DEVELOPER' })).resolves.toMatchObject({ role: 'DEVELOPER' });
  });
});
