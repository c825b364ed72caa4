import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId, type Db } from '@tollgate/db';
import { createLogger } from '@tollgate/config';
import { createStripeClient, createStripeWebhookHandler, createWebhookVerifier } from '@tollgate/billing';
import { startStripeStandIn, type StripeStandIn } from '@tollgate/billing/testing';
import { testDb } from '../harness/db';
import { makePortalTenant, OPENAPI, portalDeps, uniq } from './fixtures';
import * as portal from '../../apps/console/src/server/portal/index';
import { ServiceError } from '../../apps/console/src/server/shared/context';
import { createSessionToken } from '../../apps/console/src/server/console/session';
import type { DeveloperContext, PortalDeps, PortalTenant } from '../../apps/console/src/server/portal/context';

const SECRET = 'portal-service-test-secret-at-least-32-chars';
let db: Db;
let deps: PortalDeps;
let standIn: StripeStandIn;
const WEBHOOK_SECRET = 'whsec_portal_service_test';
let webhook: ReturnType<typeof createStripeWebhookHandler>;

beforeAll(async () => {
  db = testDb();
  deps = portalDeps(db);
  standIn = await startStripeStandIn();
  webhook = createStripeWebhookHandler({ db, webhookSecret: WEBHOOK_SECRET, logger: createLogger('portal-test', 'silent') });
});
afterAll(async () => {
  deps.redis.disconnect();
  await standIn.stop();
  await db.$disconnect();
});

const ip = () => ({ ip: `10.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}.1` });

async function rejects(p: Promise<unknown>, code: string) {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, `expected ${code}`).toBeInstanceOf(ServiceError);
  expect((err as ServiceError).code).toBe(code);
  return err as ServiceError;
}

async function signUp(
  tenant: PortalTenant,
  name = 'Dev',
): Promise<{ dev: DeveloperContext; token: string; email: string; password: string }> {
  const email = `${uniq('dev')}@example.com`;
  const password = 'correct horse battery';
  const s = await portal.signUpDeveloper(deps, tenant, { name, email, password }, ip());
  const token = await portal.createPortalToken(SECRET, tenant.id, s.consumerId, portal.passwordVersion(s.passwordHash));
  const dev = await portal.resolveDeveloper(db, SECRET, tenant, token);
  expect(dev).not.toBeNull();
  return { dev: dev!, token, email, password };
}

async function seedRollup(tenantId: string, apiId: string, keyId: string, consumerId: string, requests: number, errors = 0) {
  await db.usageRollup.create({
    data: {
      tenantId,
      granularity: 'minute',
      bucketStart: new Date(Math.floor(Date.now() / 60_000) * 60_000 - 60_000),
      apiId,
      keyId,
      consumerId,
      requests: BigInt(requests),
      status2xx: BigInt(requests - errors),
      status4xx: BigInt(errors),
      latencyBuckets: [0n, 0n, BigInt(requests)],
      latencySumMs: BigInt(requests * 2),
    },
  });
}

describe('developer sessions are bound to one tenant', () => {
  it("a session of tenant X resolves to nobody on tenant Y's portal, even for a same-e-mail account there", async () => {
    const x = await makePortalTenant(db);
    const y = await makePortalTenant(db);
    const a = await signUp(x.tenant);
    // The same person signs up on Y with the same e-mail: a different account, a different session.
    const onY = await portal.signUpDeveloper(deps, y.tenant, { name: 'Dev', email: a.email, password: a.password }, ip());
    expect(onY.consumerId).not.toBe(a.dev.consumerId);
    expect(await portal.resolveDeveloper(db, SECRET, y.tenant, a.token)).toBeNull();
    expect(await portal.resolveDeveloper(db, SECRET, x.tenant, a.token)).not.toBeNull();
    // A token for Y naming X's consumer id (forged audience with the right secret) finds nobody either.
    const crossed = await portal.createPortalToken(SECRET, y.tenant.id, a.dev.consumerId, 'whatever');
    expect(await portal.resolveDeveloper(db, SECRET, y.tenant, crossed)).toBeNull();
    // Cookies are per tenant path and name, so a browser doesn't even send X's cookie to Y.
    expect(portal.portalCookieName(x.tenant.slug)).not.toBe(portal.portalCookieName(y.tenant.slug));
    expect(portal.portalCookieOptions(`/portal/${x.tenant.slug}`, true)).toMatchObject({
      path: `/portal/${x.tenant.slug}`,
      httpOnly: true,
      secure: true,
      sameSite: 'lax',
    });
  });

  it('rejects console owner sessions, wrong secrets, tampered and oversized tokens as portal sessions', async () => {
    const x = await makePortalTenant(db);
    const a = await signUp(x.tenant);
    const ownerToken = await createSessionToken(SECRET, a.dev.consumerId);
    expect(await portal.resolveDeveloper(db, SECRET, x.tenant, ownerToken)).toBeNull();
    expect(await portal.resolveDeveloper(db, 'another-secret-that-is-32-characters-long', x.tenant, a.token)).toBeNull();
    expect(await portal.resolveDeveloper(db, SECRET, x.tenant, `${a.token.slice(0, -2)}xx`)).toBeNull();
    expect(await portal.resolveDeveloper(db, SECRET, x.tenant, 'x'.repeat(5000))).toBeNull();
    expect(await portal.resolveDeveloper(db, SECRET, x.tenant, undefined)).toBeNull();
  });

  it('a suspended developer loses the session and cannot log in', async () => {
    const x = await makePortalTenant(db);
    const a = await signUp(x.tenant);
    await db.consumer.update({ where: { id: a.dev.consumerId }, data: { status: 'SUSPENDED' } });
    expect(await portal.resolveDeveloper(db, SECRET, x.tenant, a.token)).toBeNull();
    await rejects(portal.logInDeveloper(deps, x.tenant, { email: a.email, password: a.password }, ip()), 'forbidden');
  });
});

describe('signup, login and password reset', () => {
  it('signs up, logs in with the same answer for unknown e-mail and wrong password, and resets through the e-mail outbox', async () => {
    const x = await makePortalTenant(db);
    const a = await signUp(x.tenant);
    const ok = await portal.logInDeveloper(deps, x.tenant, { email: a.email.toUpperCase(), password: a.password }, ip());
    expect(ok.consumerId).toBe(a.dev.consumerId);
    const wrong = await rejects(
      portal.logInDeveloper(deps, x.tenant, { email: a.email, password: 'nope-nope-nope' }, ip()),
      'unauthorized',
    );
    const unknown = await rejects(
      portal.logInDeveloper(deps, x.tenant, { email: 'nobody@example.com', password: 'nope-nope-nope' }, ip()),
      'unauthorized',
    );
    expect(wrong.message).toBe(unknown.message);
    await rejects(portal.signUpDeveloper(deps, x.tenant, { name: 'Again', email: a.email, password: a.password }, ip()), 'conflict');

    await portal.requestPasswordReset(deps, x.tenant, { email: a.email }, ip());
    await portal.requestPasswordReset(deps, x.tenant, { email: 'nobody-here@example.com' }, ip());
    const mails = await db.emailMessage.findMany({ where: { tenantId: x.tenant.id } });
    expect(mails).toHaveLength(1);
    expect(mails[0]!.to).toBe(a.email);
    const token = /reset\?token=([A-Za-z0-9_-]{43})/.exec(mails[0]!.text)![1]!;
    // A reset link of tenant X is not valid on tenant Y's portal.
    const y = await makePortalTenant(db);
    await rejects(portal.resetPassword(deps, y.tenant, { token, password: 'a new password 123' }), 'unprocessable');
    const reset = await portal.resetPassword(deps, x.tenant, { token, password: 'a new password 123' });
    expect(reset.consumerId).toBe(a.dev.consumerId);
    await rejects(portal.resetPassword(deps, x.tenant, { token, password: 'another password 1' }), 'unprocessable');
    // The old session and the old password stop working.
    expect(await portal.resolveDeveloper(db, SECRET, x.tenant, a.token)).toBeNull();
    await rejects(portal.logInDeveloper(deps, x.tenant, { email: a.email, password: a.password }, ip()), 'unauthorized');
    expect((await portal.logInDeveloper(deps, x.tenant, { email: a.email, password: 'a new password 123' }, ip())).consumerId).toBe(
      a.dev.consumerId,
    );
  });

  it('refuses hostile signup, login and reset input with 4xx and stores nothing', async () => {
    const x = await makePortalTenant(db);
    const hostile: unknown[] = [
      null,
      'a string',
      [],
      { name: '<script>alert(1)</script>', email: 'x@example.com', password: 'long enough pass' },
      { name: 'Dev', email: 'not-an-email', password: 'long enough pass' },
      { name: 'Dev', email: `${'a'.repeat(250)}@example.com`, password: 'long enough pass' },
      { name: 'x'.repeat(101), email: 'y@example.com', password: 'long enough pass' },
      { name: 'Dev', email: 'z@example.com', password: 'short' },
      { name: 'Dev', email: 'z@example.com', password: 'p'.repeat(201) },
      { name: 42, email: 'z@example.com', password: 'long enough pass' },
      { name: 'Dev', email: ['z@example.com'], password: 'long enough pass' },
      { name: 'Dev', email: 'z@example.com', password: { $gt: '' } },
      { name: 'Dev', email: 'z@example.com', password: 'long enough pass', status: 'ACTIVE' },
      { name: 'Dev\u0000', email: 'z@example.com', password: 'long enough pass' },
    ];
    for (const input of hostile) {
      const err = await portal.signUpDeveloper(deps, x.tenant, input, ip()).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, JSON.stringify(input)?.slice(0, 60)).toBeInstanceOf(ServiceError);
      expect(['unprocessable', 'bad_request']).toContain((err as ServiceError).code);
    }
    expect(await db.consumer.count({ where: { tenantId: x.tenant.id } })).toBe(0);
    for (const input of [
      null,
      { email: 5, password: 'x' },
      { email: 'a@b.c', password: 'x'.repeat(500) },
      { email: 'a@b.c', password: 'xxxxxxxxxxxx', extra: 1 },
    ]) {
      await rejects(portal.logInDeveloper(deps, x.tenant, input, ip()), 'unprocessable');
    }
    for (const input of [null, { email: ['a'] }, { email: 'a'.repeat(300) }]) {
      await rejects(portal.requestPasswordReset(deps, x.tenant, input, ip()), 'unprocessable');
    }
    for (const input of [
      { token: 'short', password: 'long enough pass' },
      { token: `${'a'.repeat(42)}<`, password: 'long enough pass' },
      { token: 'a'.repeat(43), password: 1 },
    ]) {
      await rejects(portal.resetPassword(deps, x.tenant, input), 'unprocessable');
    }
    expect(await db.emailMessage.count({ where: { tenantId: x.tenant.id } })).toBe(0);
    expect(await db.passwordResetToken.count({ where: { consumer: { tenantId: x.tenant.id } } })).toBe(0);
  });

  it('points reset links and Checkout return URLs at the portal where the developer is: the console path, or the own host', async () => {
    const x = await makePortalTenant(db);
    const a = await signUp(x.tenant);
    await portal.requestPasswordReset(deps, x.tenant, { email: a.email }, ip());
    await portal.requestPasswordReset({ ...deps, portalUrl: 'https://developers.acme.example' }, x.tenant, { email: a.email }, ip());
    const mails = await db.emailMessage.findMany({ where: { tenantId: x.tenant.id }, orderBy: { createdAt: 'asc' } });
    expect(mails.map((m) => /(\S+)\/reset\?token=/.exec(m.text)?.[1])).toEqual([
      `http://console.test/portal/${x.tenant.slug}`,
      'https://developers.acme.example',
    ]);
    // Its own stand-in: other tests here read the first Checkout request of the shared one.
    const stripe = await startStripeStandIn();
    try {
      const own = { ...deps, stripe: createStripeClient(stripe.settings), portalUrl: 'https://developers.acme.example' };
      const checkout = await portal.subscribeToPlan(own, a.dev, { planId: x.paidPlanId });
      const sessionId = (await db.subscription.findUniqueOrThrow({ where: { id: checkout.subscriptionId } })).stripeCheckoutSessionId!;
      expect(stripe.objects.get(`|${sessionId}`)).toMatchObject({
        success_url: 'https://developers.acme.example/billing?checkout=success',
        cancel_url: 'https://developers.acme.example/pricing?checkout=canceled',
      });
    } finally {
      await stripe.stop();
    }
  });

  it('rate-limits repeated logins for one e-mail', async () => {
    const x = await makePortalTenant(db);
    const a = await signUp(x.tenant);
    const codes: string[] = [];
    for (let i = 0; i < 12; i++) {
      const e = await portal.logInDeveloper(deps, x.tenant, { email: a.email, password: 'wrong-wrong-wrong' }, ip()).then(
        () => null,
        (err: ServiceError) => err.code,
      );
      codes.push(e ?? 'ok');
    }
    expect(codes.slice(0, 10).every((c) => c === 'unauthorized')).toBe(true);
    expect(codes.slice(10)).toEqual(['rate_limited', 'rate_limited']);
  });

  it('with owner approval on, a new developer can sign in but gets no plan or key until approved', async () => {
    const x = await makePortalTenant(db, { requireDeveloperApproval: true });
    const a = await signUp(x.tenant);
    expect(a.dev.status).toBe('PENDING');
    await rejects(portal.subscribeToPlan(deps, a.dev, { planId: x.freePlanId }), 'forbidden');
    await rejects(portal.createMyKey(a.dev, { name: 'k' }), 'forbidden');
    await db.consumer.update({ where: { id: a.dev.consumerId }, data: { status: 'ACTIVE' } });
    const approved = (await portal.resolveDeveloper(db, SECRET, x.tenant, a.token))!;
    expect((await portal.subscribeToPlan(deps, approved, { planId: x.freePlanId })).kind).toBe('active');
  });
});

describe('developers only reach their own keys, usage and invoices', () => {
  it("developer A gets 404 for every action on B's key and sees none of B's usage or invoices", async () => {
    const x = await makePortalTenant(db);
    const a = await signUp(x.tenant, 'Alice');
    const b = await signUp(x.tenant, 'Bob');
    for (const d of [a, b]) await portal.subscribeToPlan(deps, d.dev, { planId: x.freePlanId });
    const ka = await portal.createMyKey(a.dev, { name: 'alice key' });
    const kb = await portal.createMyKey(b.dev, { name: 'bob key' });
    expect(ka.secret).toMatch(/^tg_live_/);
    expect(JSON.stringify(ka.key)).not.toContain(ka.secret);

    await rejects(portal.getMyKey(a.dev, kb.key.id), 'not_found');
    await rejects(portal.renameMyKey(a.dev, kb.key.id, { name: 'mine now' }), 'not_found');
    await rejects(portal.revokeMyKey(a.dev, kb.key.id), 'not_found');
    await rejects(portal.rollMyKey(a.dev, kb.key.id, {}), 'not_found');
    await rejects(portal.myUsage(a.dev, { keyId: kb.key.id }), 'not_found');
    expect((await portal.listMyKeys(a.dev)).map((k) => k.id)).toEqual([ka.key.id]);
    const bKey = await db.apiKey.findUniqueOrThrow({ where: { id: kb.key.id } });
    expect(bKey).toMatchObject({ name: 'bob key', status: 'ACTIVE' });

    // A developer of another tenant can't reach A's key either.
    const y = await makePortalTenant(db);
    const c = await signUp(y.tenant, 'Carol');
    await rejects(portal.getMyKey(c.dev, ka.key.id), 'not_found');

    await seedRollup(x.tenant.id, x.apiId, ka.key.id, a.dev.consumerId, 7, 1);
    await seedRollup(x.tenant.id, x.apiId, kb.key.id, b.dev.consumerId, 50, 5);
    const ua = await portal.myUsage(a.dev, { range: '1h' });
    expect(ua.totals.requests).toBe(7);
    expect(ua.totals.s4xx).toBe(1);
    // Asking for someone else's consumer id is refused outright, not silently ignored.
    await rejects(portal.myUsage(a.dev, { range: '1h', consumerId: b.dev.consumerId }), 'unprocessable');
    await rejects(portal.myUsage(a.dev, { range: '1000d' }), 'unprocessable');
    expect(await portal.myKeyUsage(a.dev, { range: '1h' })).toEqual([expect.objectContaining({ id: ka.key.id, requests: 7, errors: 1 })]);

    const subB = await portal.currentSubscription(b.dev);
    await db.invoice.create({
      data: {
        id: newId('invoice'),
        tenantId: x.tenant.id,
        subscriptionId: subB!.id,
        periodStart: new Date(Date.now() - 86_400_000),
        periodEnd: new Date(),
        currency: 'usd',
        totalMinor: 2900n,
        status: 'paid',
        lines: [],
      },
    });
    expect((await portal.billingOverview(a.dev)).invoices).toEqual([]);
    expect((await portal.billingOverview(b.dev)).invoices).toHaveLength(1);
  });

  it('creates, renames, rolls with a grace period and revokes own keys, each published through the outbox', async () => {
    const x = await makePortalTenant(db);
    const a = await signUp(x.tenant);
    await rejects(portal.createMyKey(a.dev, { name: 'too early' }), 'conflict');
    await portal.subscribeToPlan(deps, a.dev, { planId: x.freePlanId });
    const k = await portal.createMyKey(a.dev, { name: 'server' });
    await rejects(portal.createMyKey(a.dev, { name: '<img src=x onerror=alert(1)>' }), 'unprocessable');
    await rejects(portal.createMyKey(a.dev, { name: 'k', subscriptionId: 'sub_x' }), 'unprocessable');
    expect((await portal.renameMyKey(a.dev, k.key.id, { name: 'backend' })).name).toBe('backend');
    await rejects(portal.rollMyKey(a.dev, k.key.id, { graceSeconds: 30 * 86_400 }), 'unprocessable');
    const rolled = await portal.rollMyKey(a.dev, k.key.id, { graceSeconds: 3600 });
    expect(rolled.secret).not.toBe(k.secret);
    expect(rolled.previous.expiresAt!.getTime()).toBeGreaterThan(Date.now() + 3500_000);
    expect(rolled.key.rolledFromId).toBe(k.key.id);
    const revoked = await portal.revokeMyKey(a.dev, rolled.key.id);
    expect(revoked.status).toBe('REVOKED');
    const outbox = await db.outboxEvent.findMany({ where: { kind: 'key' } });
    const published = new Set(outbox.map((o) => (o.payload as { keyId?: string }).keyId));
    expect(published.has(k.key.id) && published.has(rolled.key.id)).toBe(true);
  });

  it('keeps the limits and APIs the owner set on a key when the developer rolls it', async () => {
    const x = await makePortalTenant(db);
    const a = await signUp(x.tenant);
    await portal.subscribeToPlan(deps, a.dev, { planId: x.freePlanId });
    const k = await portal.createMyKey(a.dev, { name: 'tuned' });
    await db.apiKey.update({
      where: { id: k.key.id },
      data: { rateLimitOverride: 7, rateWindowOverride: 60, quotaOverride: 77, scopes: ['read'], apiIds: ['api_owner_set'] },
    });
    const rolled = await portal.rollMyKey(a.dev, k.key.id, { graceSeconds: 0 });
    const fresh = await db.apiKey.findUniqueOrThrow({ where: { id: rolled.key.id } });
    expect(fresh).toMatchObject({
      rateLimitOverride: 7,
      rateWindowOverride: 60,
      quotaOverride: 77,
      scopes: ['read'],
      apiIds: ['api_owner_set'],
    });
    expect(rolled.previous.status).toBe('REVOKED');
    const outbox = await db.outboxEvent.findMany({ where: { kind: 'key' } });
    const published = new Set(outbox.map((o) => (o.payload as { keyId?: string }).keyId));
    expect(published.has(k.key.id) && published.has(rolled.key.id)).toBe(true);
  });
});

describe('plans and payment', () => {
  it('free is instant; paid goes to Checkout and, once Stripe activates it, takes over the keys; cancel ends a free plan', async () => {
    const x = await makePortalTenant(db);
    const a = await signUp(x.tenant);
    const free = await portal.subscribeToPlan(deps, a.dev, { planId: x.freePlanId });
    expect(free.kind).toBe('active');
    await rejects(portal.subscribeToPlan(deps, a.dev, { planId: x.freePlanId }), 'conflict');
    await rejects(portal.subscribeToPlan(deps, a.dev, { planId: x.privatePlanId }), 'not_found');
    await rejects(portal.subscribeToPlan(deps, a.dev, { planId: 'pln_<script>' }), 'unprocessable');
    const other = await makePortalTenant(db);
    await rejects(portal.subscribeToPlan(deps, a.dev, { planId: other.freePlanId }), 'not_found');
    // Without Stripe, a paid plan can't be bought, and nothing changes.
    await rejects(portal.subscribeToPlan(deps, a.dev, { planId: x.paidPlanId }), 'unavailable');
    const key = await portal.createMyKey(a.dev, { name: 'k' });

    const paidDeps = { ...deps, stripe: createStripeClient(standIn.settings) };
    const checkout = await portal.subscribeToPlan(paidDeps, a.dev, { planId: x.paidPlanId });
    expect(checkout.kind).toBe('checkout');
    if (checkout.kind !== 'checkout') throw new Error('unreachable');
    expect(checkout.url).toMatch(/^https:\/\/checkout\.stripe\.com\//);
    const session = standIn.requests.find((r) => r.path === '/v1/checkout/sessions')!;
    expect(session.body).toMatchObject({
      mode: 'subscription',
      client_reference_id: checkout.subscriptionId,
      success_url: `http://console.test/portal/${x.tenant.slug}/billing?checkout=success`,
    });
    // Until the webhook, the developer stays on Free and the key stays there.
    expect((await portal.currentSubscription(a.dev))!.planId).toBe(x.freePlanId);
    expect((await portal.billingOverview(a.dev)).pending?.plan.name).toBe('Pro');
    expect(await portal.settleSubscriptions(paidDeps, a.dev)).toBe(0);
    // What the worker's webhook handler does on customer.subscription.created (status active):
    await db.subscription.update({ where: { id: checkout.subscriptionId }, data: { status: 'ACTIVE' } });
    expect(await portal.settleSubscriptions(paidDeps, a.dev)).toBe(1);
    expect((await portal.currentSubscription(a.dev))!.id).toBe(checkout.subscriptionId);
    expect((await db.apiKey.findUniqueOrThrow({ where: { id: key.key.id } })).subscriptionId).toBe(checkout.subscriptionId);
    expect((await db.subscription.findUniqueOrThrow({ where: { id: free.subscriptionId } })).status).toBe('CANCELED');
    const bill = await portal.billingOverview(a.dev);
    expect(bill.current).toMatchObject({ plan: { name: 'Pro', paid: true } });
    expect(bill.period!.projectedMinor).toBeGreaterThan(0);

    // Back down to free (no Stripe subscription id here: nothing to cancel remotely), then cancel.
    expect((await portal.subscribeToPlan(paidDeps, a.dev, { planId: x.freePlanId })).kind).toBe('active');
    const canceled = await portal.cancelSubscription(deps, a.dev);
    expect(canceled.immediate).toBe(true);
    expect(await portal.currentSubscription(a.dev)).toBeNull();
    await rejects(portal.cancelSubscription(deps, a.dev), 'conflict');
  });

  it('switches between paid plans in Stripe with proration, schedules a paid cancel at period end, and downgrades to free by ending the Stripe subscription', async () => {
    const x = await makePortalTenant(db);
    const scaleId = newId('plan');
    await db.plan.create({
      data: {
        id: scaleId,
        tenantId: x.tenant.id,
        name: 'Scale',
        slug: 'scale',
        flatFeeMinor: 9900,
        monthlyQuota: 1_000_000,
        quotaMode: 'OVERAGE',
      },
    });
    await db.planApi.create({ data: { planId: scaleId, apiId: x.apiId } });
    const paidDeps = { ...deps, stripe: createStripeClient(standIn.settings) };
    const a = await signUp(x.tenant);
    const checkout = await portal.subscribeToPlan(paidDeps, a.dev, { planId: x.paidPlanId });
    // The developer pays: the stand-in completes Checkout and its webhooks go through the real handler.
    const sessionId = (await db.subscription.findUniqueOrThrow({ where: { id: checkout.subscriptionId } })).stripeCheckoutSessionId!;
    const paid = standIn.completeCheckout(sessionId);
    const stripeSub = paid.subscription.id;
    for (const event of paid.events) {
      const payload = JSON.stringify(event);
      const res = await webhook(payload, createWebhookVerifier().webhooks.generateTestHeaderString({ payload, secret: WEBHOOK_SECRET }));
      expect(res.status).toBe(200);
    }
    expect(await portal.settleSubscriptions(paidDeps, a.dev)).toBe(0);
    expect(await portal.currentSubscription(a.dev)).toMatchObject({
      id: checkout.subscriptionId,
      status: 'ACTIVE',
      stripeSubscriptionId: stripeSub,
    });
    const key = await portal.createMyKey(a.dev, { name: 'k' });

    const up = await portal.subscribeToPlan(paidDeps, a.dev, { planId: scaleId });
    expect(up).toEqual({ kind: 'active', subscriptionId: checkout.subscriptionId });
    const scale = await db.plan.findUniqueOrThrow({ where: { id: scaleId } });
    const remote = standIn.objects.get(`|${stripeSub}`)!;
    expect((remote.items as { data: Array<{ price: { id: string } }> }).data.map((i) => i.price.id)).toEqual([scale.stripeFlatPriceId]);
    expect(remote.proration_behavior_last).toBe('create_prorations');
    expect((await portal.currentSubscription(a.dev))!.planId).toBe(scaleId);
    expect((await db.apiKey.findUniqueOrThrow({ where: { id: key.key.id } })).subscriptionId).toBe(checkout.subscriptionId);

    const cancel = await portal.cancelSubscription(paidDeps, a.dev);
    expect(cancel.immediate).toBe(false);
    expect(remote.cancel_at_period_end).toBe(true);
    expect((await portal.currentSubscription(a.dev))!.cancelAtPeriodEnd).toBe(true);

    const down = await portal.subscribeToPlan(paidDeps, a.dev, { planId: x.freePlanId });
    expect(remote.status).toBe('canceled');
    expect((await db.apiKey.findUniqueOrThrow({ where: { id: key.key.id } })).subscriptionId).toBe(down.subscriptionId);
    expect((await db.subscription.findUniqueOrThrow({ where: { id: checkout.subscriptionId } })).status).toBe('CANCELED');

    // When Stripe doesn't answer, nothing changes here.
    const b = await signUp(x.tenant);
    const c2 = await portal.subscribeToPlan(paidDeps, b.dev, { planId: x.paidPlanId });
    await db.subscription.update({
      where: { id: c2.subscriptionId },
      data: { status: 'ACTIVE', stripeSubscriptionId: 'sub_missing_in_stripe' },
    });
    await rejects(portal.subscribeToPlan(paidDeps, b.dev, { planId: scaleId }), 'unavailable');
    expect((await portal.currentSubscription(b.dev))!.planId).toBe(x.paidPlanId);
  });

  it('warns on the quota meter at 80% and 100%', () => {
    expect(portal.quotaLevel(79, 100)).toBe('ok');
    expect(portal.quotaLevel(80, 100)).toBe('warning');
    expect(portal.quotaLevel(100, 100)).toBe('exhausted');
    expect(portal.quotaLevel(5, null)).toBe('unlimited');
  });
});

describe('catalog, reference and try-it', () => {
  it('lists only public APIs and plans, and renders operations, parameters, schemas and examples from OpenAPI', async () => {
    const x = await makePortalTenant(db);
    const apis = await portal.listPublicApis(db, x.tenant);
    expect(apis.map((a) => a.slug)).toEqual(['weather']);
    expect(await portal.getPublicApi(db, x.tenant, 'secret')).toBeNull();
    expect(await portal.getPublicApi(db, x.tenant, '../weather')).toBeNull();
    const plans = await portal.listPublicPlans(db, x.tenant);
    expect(plans.map((p) => [p.name, p.paid])).toEqual([
      ['Free', false],
      ['Pro', true],
    ]);

    const api = (await portal.getPublicApi(db, x.tenant, 'weather'))!;
    const ref = api.reference;
    expect(ref).toMatchObject({ title: 'Weather API', version: '1.2.0' });
    const get = ref.operations.find((o) => o.id === 'getForecast')!;
    expect(get.parameters.map((p) => `${p.in}:${p.name}:${p.required}`)).toEqual(['path:city:true', 'query:days:true']);
    expect(get.responses[0]!.schema).toMatchObject({ ref: 'Forecast', properties: [{ name: 'city' }, { name: 'days' }] });
    const post = ref.operations.find((o) => o.id === 'createAlert')!;
    expect(JSON.parse(post.requestBody!.example!)).toEqual({ city: 'oslo', level: 'high' });
    expect(ref.schemas.map((s) => s.name).sort()).toEqual(['Day', 'Forecast']);
    // A self-referencing schema and junk documents don't hang or throw.
    expect(
      portal.buildReference({ paths: { '/x': { get: { parameters: [{ $ref: '#/nope' }, 5, null] } } } }, 'Junk').operations,
    ).toHaveLength(1);
    expect(portal.buildReference('not a document', 'Junk').operations).toEqual([]);

    const url = portal.sampleUrl(get, 'http://p.localhost:8080/weather');
    expect(url).toBe('http://p.localhost:8080/weather/forecast/paris?days=3');
    const s = portal.codeSamples(url, 'POST', 'tg_live_abc…', JSON.stringify({ city: "o'slo", ok: true }));
    expect(s.curl).toContain(`-H 'Authorization: Bearer tg_live_abc…'`);
    expect(s.curl).toContain(`'\\''`);
    expect(s.javascript).toContain('"Bearer tg_live_abc…"');
    expect(s.python).toContain('"ok":True');
    expect(OPENAPI.info.title).toBe('Weather API');
  });

  it('try-it refuses paths that could leave the API, bad methods and bad keys, and never picks the host from input', async () => {
    const base = 'http://t.localhost:1';
    const key = `tg_live_${'a'.repeat(30)}`;
    for (const input of [
      { method: 'GET', path: 'http://169.254.169.254/latest', key },
      { method: 'GET', path: '//evil.example/x', key },
      { method: 'GET', path: '/../admin', key },
      { method: 'GET', path: '/a/./b', key },
      { method: 'GET', path: '/a\\b', key },
      { method: 'TRACE', path: '/a', key },
      { method: 'GET', path: '/a', key: 'sk_live_x' },
      { method: 'GET', path: '/' + 'a'.repeat(3000), key },
      { method: 'POST', path: '/a', key, body: 'x'.repeat(70_000) },
      { method: 'GET', path: '/a', key, host: 'evil.example' },
    ]) {
      await rejects(portal.tryThroughGateway(base, '/weather', input), 'unprocessable');
    }
    // Valid input against a gateway that isn't there is a clean 502, not a crash.
    await rejects(portal.tryThroughGateway(base, '/weather', { method: 'GET', path: '/forecast/paris?days=1', key }, 2000), 'bad_gateway');
  });
});
