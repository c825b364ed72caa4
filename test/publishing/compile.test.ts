import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  compileKeyRecord,
  compileTenantPolicy,
  enqueueKeyPublish,
  enqueuePolicyPublish,
  newId,
  Prisma,
  UnknownEntityError,
} from '@tollgate/db';
import { PolicySnapshot } from '@tollgate/policy';
import { createFixture, createIsolatedDatabase, type Fixture } from './helpers';

let env: Awaited<ReturnType<typeof createIsolatedDatabase>>;
let f: Fixture;

beforeAll(async () => {
  env = await createIsolatedDatabase();
  f = await createFixture(env.db);
});
afterAll(async () => env?.drop());

describe('compileTenantPolicy', () => {
  it('maps APIs, enabled targets, routes, active plans and domains into a valid snapshot', async () => {
    const snap = await compileTenantPolicy(env.db, f.tenantId);
    expect(PolicySnapshot.safeParse(snap).success).toBe(true);
    expect(snap).toMatchObject({ tenantId: f.tenantId, tenantSlug: f.slug, version: 0, hosts: ['api.example.test'] });
    const api = snap!.apis[0]!;
    expect(api).toMatchObject({
      id: f.apiId,
      basePath: '/echo',
      authMode: 'api_key',
      failMode: 'open',
      loadBalancing: 'round_robin',
      jwt: null,
    });
    expect(api.targets).toHaveLength(1);
    expect(api.targets[0]!.healthCheck).toMatchObject({ path: '/get', intervalMs: 10000 });
    expect(api.routes[0]).toMatchObject({ path: '/*', methods: ['GET', 'POST'], rateLimit: null, transform: null });
    const pro = snap!.plans.find((p) => p.slug === 'pro');
    expect(pro).toEqual({
      id: f.proId,
      slug: 'pro',
      name: 'Pro',
      apiIds: [f.apiId],
      rateLimit: { limit: 100, windowSeconds: 1, algorithm: 'gcra' },
      quota: { limit: 100_000, mode: 'overage' },
    });
    expect(snap!.plans.find((p) => p.slug === 'free')!.rateLimit!.algorithm).toBe('sliding_window');
  });

  it('leaves out archived APIs and archived plans nobody is on, keeps archived plans with live subscribers', async () => {
    const g = await createFixture(env.db);
    await env.db.plan.update({ where: { id: g.proId }, data: { status: 'ARCHIVED' } });
    await env.db.plan.update({ where: { id: g.freeId }, data: { status: 'ARCHIVED' } });
    const extraApi = newId('api');
    await env.db.api.create({
      data: { id: extraApi, tenantId: g.tenantId, name: 'Old', slug: 'old', basePath: '/old', archivedAt: new Date() },
    });
    const snap = await compileTenantPolicy(env.db, g.tenantId);
    expect(snap!.plans.map((p) => p.id)).toEqual([g.freeId]);
    expect(snap!.apis.map((a) => a.id)).toEqual([g.apiId]);
  });

  it('labels the snapshot with the version the outbox writer bumped', async () => {
    const { version } = await env.db.$transaction((tx) => enqueuePolicyPublish(tx, f.tenantId));
    expect(version).toBe(1);
    expect((await compileTenantPolicy(env.db, f.tenantId))!.version).toBe(1);
  });

  it('answers null for unknown or absurd tenant ids instead of throwing', async () => {
    expect(await compileTenantPolicy(env.db, newId('tenant'))).toBeNull();
    expect(await compileTenantPolicy(env.db, '')).toBeNull();
    expect(await compileTenantPolicy(env.db, 'x'.repeat(10_000))).toBeNull();
    expect(await compileTenantPolicy(env.db, '\'; DROP TABLE "Tenant"; --')).toBeNull();
  });

  it('refuses to publish a snapshot the gateway could not read, naming the bad field', async () => {
    const g = await createFixture(env.db);
    await env.db.route.create({ data: { id: newId('route'), apiId: g.apiId, path: '/x', rateLimit: { limit: -1 } } });
    await expect(compileTenantPolicy(env.db, g.tenantId)).rejects.toThrow(/rate limit of route/);
  });
});

describe('compileKeyRecord', () => {
  it('carries status, subscription, plan, period in epoch ms and overrides', async () => {
    await env.db.apiKey.update({ where: { id: f.keyId }, data: { rateLimitOverride: 5, quotaOverride: 50, scopes: ['read'] } });
    const rec = await compileKeyRecord(env.db, f.keyId);
    expect(rec).toEqual({
      schemaVersion: 1,
      keyId: f.keyId,
      tenantId: f.tenantId,
      consumerId: f.consumerId,
      subscriptionId: f.subscriptionId,
      planId: f.freeId,
      status: 'active',
      subscriptionStatus: 'active',
      expiresAt: null,
      apiIds: [],
      scopes: ['read'],
      rateLimitOverride: { limit: 5, windowSeconds: 1 },
      quotaOverride: 50,
      periodStart: f.periodStart.getTime(),
      periodEnd: f.periodEnd.getTime(),
      env: 'test',
    });
  });

  it('publishes a revoked key, or a key of a suspended consumer, as revoked; a rolled key keeps its expiry', async () => {
    const g = await createFixture(env.db);
    const expires = new Date(Date.now() + 3600_000);
    await env.db.apiKey.update({ where: { id: g.keyId }, data: { expiresAt: expires } });
    expect(await compileKeyRecord(env.db, g.keyId)).toMatchObject({ status: 'active', expiresAt: expires.getTime() });
    await env.db.consumer.update({ where: { id: g.consumerId }, data: { status: 'SUSPENDED' } });
    expect((await compileKeyRecord(env.db, g.keyId))!.status).toBe('revoked');
    await env.db.consumer.update({ where: { id: g.consumerId }, data: { status: 'ACTIVE' } });
    await env.db.apiKey.update({ where: { id: g.keyId }, data: { status: 'REVOKED', revokedAt: new Date() } });
    expect((await compileKeyRecord(env.db, g.keyId))!.status).toBe('revoked');
    await env.db.subscription.update({ where: { id: g.subscriptionId }, data: { status: 'PAST_DUE' } });
    expect((await compileKeyRecord(env.db, g.keyId))!.subscriptionStatus).toBe('past_due');
  });

  it('answers null for a deleted or unknown key', async () => {
    const g = await createFixture(env.db);
    await env.db.apiKey.delete({ where: { id: g.keyId } });
    expect(await compileKeyRecord(env.db, g.keyId)).toBeNull();
    expect(await compileKeyRecord(env.db, '')).toBeNull();
    expect(await compileKeyRecord(env.db, 'k'.repeat(5000))).toBeNull();
  });
});

describe('outbox writers', () => {
  it('refuse unknown tenants and keys with a clear error and write nothing', async () => {
    const before = await env.db.outboxEvent.count();
    await expect(env.db.$transaction((tx) => enqueuePolicyPublish(tx, 'ten_nope'))).rejects.toBeInstanceOf(UnknownEntityError);
    await expect(env.db.$transaction((tx) => enqueueKeyPublish(tx, 'key_nope'))).rejects.toThrow(/does not exist/);
    expect(await env.db.outboxEvent.count()).toBe(before);
  });
});

describe('edge policies (ADR 0025)', () => {
  it('publishes CORS, address rules, route scopes and limits, the breaker, plan and key rules', async () => {
    const g = await createFixture(env.db);
    const cors = { origins: ['https://app.example'], credentials: true };
    const breaker = { failureRatio: 0.5, minRequests: 20, windowSeconds: 30, openSeconds: 10, halfOpenProbes: 2 };
    const shared = { limit: 100, windowSeconds: 1, algorithm: 'gcra' };
    await env.db.api.update({
      where: { id: g.apiId },
      data: { cors, ipRules: { deny: ['2001:db8::/32'] }, perIpRateLimit: shared, circuitBreaker: breaker },
    });
    await env.db.route.updateMany({ where: { apiId: g.apiId }, data: { requiredScopes: ['orders:write'], sharedRateLimit: shared } });
    await env.db.plan.update({ where: { id: g.proId }, data: { ipRules: { allow: ['10.0.0.0/8'] } } });
    await env.db.apiKey.update({ where: { id: g.keyId }, data: { ipRules: { deny: ['192.0.2.1'] } } });

    const api = (await compileTenantPolicy(env.db, g.tenantId))!.apis[0]!;
    expect(api.cors).toEqual({ ...cors, methods: [], headers: [], exposedHeaders: [], maxAgeSeconds: 600 });
    expect(api.ipRules).toEqual({ allow: [], deny: ['2001:db8::/32'] });
    expect(api.perIpRateLimit).toEqual(shared);
    expect(api.circuitBreaker).toEqual(breaker);
    expect(api.routes[0]).toMatchObject({ requiredScopes: ['orders:write'], sharedRateLimit: shared });
    const snap = await compileTenantPolicy(env.db, g.tenantId);
    expect(snap!.plans.find((p) => p.id === g.proId)!.ipRules).toEqual({ allow: ['10.0.0.0/8'], deny: [] });
    expect((await compileKeyRecord(env.db, g.keyId))!.ipRules).toEqual({ allow: [], deny: ['192.0.2.1'] });
  });

  it('refuses to publish "*" with credentials or a bad CIDR written straight into the database', async () => {
    const g = await createFixture(env.db);
    await env.db.api.update({ where: { id: g.apiId }, data: { cors: { origins: ['*'], credentials: true } } });
    await expect(compileTenantPolicy(env.db, g.tenantId)).rejects.toThrow(/CORS of API/);
    await env.db.api.update({ where: { id: g.apiId }, data: { cors: Prisma.DbNull, ipRules: { deny: ['10.0.0.0/33'] } } });
    await expect(compileTenantPolicy(env.db, g.tenantId)).rejects.toThrow(/address rules of API/);
  });
});
