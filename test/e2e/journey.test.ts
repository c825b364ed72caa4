import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createPrismaClient, type Db } from '@tollgate/db';
import { createWebhookVerifier } from '@tollgate/billing';
import { startStripeStandIn, type StripeStandIn } from '@tollgate/billing/testing';
import { createDemoUpstream } from '@tollgate/demo-upstream';
import { createKeyspace } from '@tollgate/policy';
import { cloneRunDatabase, testEnv, testRedis, uniquePrefix, waitFor } from '../harness/index';
import { spawnWorker, type WorkerProcess } from '../worker/worker-process';
import { ensureConsoleBuild, launchBrowser, root, startConsole, startGateway, type Child } from './platform';

// The whole journey on the running platform: console (dist/main.js), gateway and worker as child
// processes, the demo upstream, the Stripe stand-in, real PostgreSQL and Redis. The database is
// this file's own, because the worker's schedules (outbox relay, meter reports) act on every row.

const shots = path.join(root, 'test-results/screenshots/journey');
const WEBHOOK_SECRET = `whsec_${randomBytes(16).toString('hex')}`;

let database: { url: string; drop: () => Promise<void> };
let db: Db;
let standIn: StripeStandIn;
let upstream: Server;
let consoleApp: Child & { base: string };
let gateway: Child & { port: number };
let worker: WorkerProcess;
let browser: Browser;
let spoolDir: string;
let prefix = '';

beforeAll(async () => {
  rmSync(shots, { recursive: true, force: true });
  mkdirSync(shots, { recursive: true });
  const build = ensureConsoleBuild();
  build.catch(() => undefined); // awaited below; this only keeps an early failure from being 'unhandled'
  // A database of its own: the worker's schedules run over every row.
  database = await cloneRunDatabase('iso');
  db = createPrismaClient(database.url, { max: 3 });
  standIn = await startStripeStandIn();
  upstream = createDemoUpstream({});
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  prefix = uniquePrefix('journey');
  const shared = { REDIS_URL: testEnv().redisUrl, REDIS_PREFIX: prefix };
  const stripeEnv = {
    STRIPE_SECRET_KEY: standIn.apiKey,
    STRIPE_API_HOST: '127.0.0.1',
    STRIPE_API_PORT: String(standIn.port),
    STRIPE_API_PROTOCOL: 'http',
  };
  spoolDir = mkdtempSync(path.join(os.tmpdir(), 'tg-journey-spool-'));
  gateway = await startGateway({
    ...shared,
    GATEWAY_SPOOL_DIR: spoolDir,
    GATEWAY_KEY_CACHE_NEGATIVE_TTL_MS: '200',
    GATEWAY_RESYNC_INTERVAL_MS: '500',
  });
  worker = await spawnWorker({
    ...shared,
    ...stripeEnv,
    DATABASE_URL: database.url,
    STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
    OUTBOX_POLL_MS: '100',
    METER_SETTLE_MS: '0',
    METER_REPORT_EVERY_MS: '300',
  });
  await build;
  consoleApp = await startConsole({
    ...shared,
    ...stripeEnv,
    DATABASE_URL: database.url,
    SESSION_SECRET: 'journey-test-session-secret-at-least-32-chars',
    GATEWAY_BASE_DOMAIN: 'localhost',
    GATEWAY_PORT: String(gateway.port),
  });
  browser = await launchBrowser();
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await consoleApp?.stop();
  if (worker?.child.exitCode === null) {
    worker.child.kill('SIGTERM');
    await worker.exited;
  }
  await gateway?.stop();
  await standIn?.stop();
  await new Promise<void>((r) => (upstream ? upstream.close(() => r()) : r()));
  await db?.$disconnect();
  await database?.drop();
  if (spoolDir) rmSync(spoolDir, { recursive: true, force: true });
});

async function newPage(ctx: BrowserContext): Promise<Page> {
  const page = await ctx.newPage();
  page.setDefaultTimeout(20_000);
  return page;
}

async function signedWebhook(payload: string) {
  const header = createWebhookVerifier().webhooks.generateTestHeaderString({ payload, secret: WEBHOOK_SECRET });
  const res = await fetch(`http://127.0.0.1:${worker.port}/webhooks/stripe`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'stripe-signature': header },
    body: payload,
  });
  expect(res.status, await res.clone().text()).toBe(200);
  return res.json();
}

describe('the whole journey', () => {
  it('owner publishes an API with free and paid plans; a developer subscribes, hits the quota, upgrades through Checkout and is billed exactly for the calls made', async () => {
    const slug = `journey-${randomBytes(3).toString('hex')}`;
    const ownerCtx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const devCtx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const owner = await newPage(ownerCtx);
    const dev = await newPage(devCtx);
    const base = consoleApp.base;
    let step = 0;
    const shot = async (page: Page, name: string) =>
      page.screenshot({ path: path.join(shots, `${String(++step).padStart(2, '0')}-${name}.png`), fullPage: true });
    const calls: number[] = [];
    let lastBody = '';
    // node:http, not fetch: fetch drops the Host header, and the gateway picks the tenant by it.
    const call = (secret: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest(
          {
            host: '127.0.0.1',
            port: gateway.port,
            path: `/weather/get?n=${calls.length}`,
            headers: { host: `${slug}.localhost`, authorization: `Bearer ${secret}` },
          },
          (res) => {
            let body = '';
            res.on('data', (c: Buffer) => (body += c.toString()));
            res.on('end', () => {
              calls.push(res.statusCode!);
              lastBody = body;
              resolve({ status: res.statusCode!, body });
            });
          },
        );
        req.on('error', reject);
        req.end();
      });
    try {
      // ── the owner: workspace, API on the demo upstream (public, with OpenAPI), two plans ──
      await owner.goto(`${base}/signup`);
      await owner.getByLabel('Your name').fill('Olive Owner');
      await owner.getByLabel('Work e-mail').fill(`${slug}-owner@example.com`);
      await owner.getByLabel('Password').fill('correct horse battery staple');
      await owner.getByLabel('Company or product name').fill('Journey Weather');
      await owner.getByLabel('Workspace address').fill(slug);
      await owner.getByRole('button', { name: 'Create workspace' }).click();
      await owner.waitForURL(`**/t/${slug}?welcome=1`);
      await shot(owner, 'owner-signed-up');

      await owner.goto(`${base}/t/${slug}/settings`);
      await owner.getByLabel('Allow upstream targets on private networks').check();
      await owner.getByRole('button', { name: 'Save settings' }).click();
      await expect.poll(() => owner.locator('form [role="status"]').first().textContent()).toContain('Settings saved');

      await owner.goto(`${base}/t/${slug}/apis/new`);
      await owner.locator('#f-name').fill('Weather API');
      await owner.locator('#f-slug').fill('weather');
      await owner.locator('#f-basePath').fill('/weather');
      await owner
        .locator('input[name=targetUrl]')
        .first()
        .fill(`http://127.0.0.1:${(upstream.address() as { port: number }).port}`);
      await owner.locator('#f-visibility').selectOption('PUBLIC');
      await owner.locator('#f-openapi').fill(
        JSON.stringify({
          openapi: '3.1.0',
          info: { title: 'Weather API', version: '1.0.0', description: 'Echoes your request, like the weather.' },
          paths: {
            '/get': {
              get: {
                operationId: 'echo',
                summary: 'Echo the request',
                parameters: [{ name: 'n', in: 'query', schema: { type: 'integer' }, example: 1 }],
                responses: {
                  '200': { description: 'The echoed request', content: { 'application/json': { example: { args: { n: '1' } } } } },
                },
              },
            },
          },
        }),
      );
      await owner.getByRole('button', { name: 'Register API' }).click();
      await owner.waitForURL(/\/apis\/api_[0-9a-z]+\?created=1$/);
      // A catch-all route: the gateway forwards only paths that match a route.
      await owner.getByText('Add a route', { exact: true }).click();
      const routeForm = owner.locator('form', { has: owner.getByRole('button', { name: 'Add route' }) });
      await routeForm.locator('input[name=path]').fill('/*');
      await owner.getByRole('button', { name: 'Add route' }).click();
      await expect.poll(() => routeForm.locator('[role="status"], [role="alert"]').first().textContent(), { timeout: 20_000 }).toBeTruthy();
      expect(await routeForm.locator('[role="alert"]').count()).toBe(0);
      await shot(owner, 'owner-api-registered');

      const createPlan = async (p: {
        name: string;
        slug: string;
        quota: string;
        mode: 'HARD_CAP' | 'OVERAGE';
        fee: string;
        overage: string;
      }) => {
        await owner.goto(`${base}/t/${slug}/plans/new`);
        await owner.locator('#f-name').fill(p.name);
        await owner.locator('#f-slug').fill(p.slug);
        await owner.locator('#f-rateLimit').fill('100');
        await owner.locator('#f-monthlyQuota').fill(p.quota);
        await owner.locator('#f-quotaMode').selectOption(p.mode);
        await owner.locator('#f-flatFee').fill(p.fee);
        await owner.locator('#f-includedRequests').fill('0');
        await owner.locator('#f-overagePrice').fill(p.overage);
        await owner.getByRole('button', { name: 'Create plan' }).click();
        await owner.waitForURL(/\/plans\/pln_[0-9a-z]+\?created=1$/);
      };
      await createPlan({ name: 'Free', slug: 'free', quota: '5', mode: 'HARD_CAP', fee: '0', overage: '0' });
      await createPlan({ name: 'Pro', slug: 'pro', quota: '1000', mode: 'OVERAGE', fee: '29', overage: '0.01' });
      await shot(owner, 'owner-plans');

      // ── the developer: portal, signup, free plan, key ──
      await dev.goto(`${base}/portal/${slug}`);
      await dev.getByRole('link', { name: 'Weather API' }).click();
      await dev.waitForURL(`**/portal/${slug}/apis/weather`);
      expect(await dev.getByTestId('sample-curl').first().textContent()).toContain(
        `'http://${slug}.localhost:${gateway.port}/weather/get'`,
      );
      await shot(dev, 'dev-api-reference');
      await dev.goto(`${base}/portal/${slug}/pricing`);
      await shot(dev, 'dev-pricing');
      await dev.goto(`${base}/portal/${slug}/signup`);
      const devEmail = `${slug}-dev@example.com`;
      await dev.getByLabel('Your name').fill('Dana Developer');
      await dev.getByLabel('E-mail').fill(devEmail);
      await dev.getByLabel('Password').fill('another good passphrase');
      await dev.getByRole('button', { name: 'Create account' }).click();
      await dev.waitForURL(`**/portal/${slug}/keys?welcome=1`);
      await shot(dev, 'dev-signed-up');
      await dev.goto(`${base}/portal/${slug}/pricing`);
      await dev.getByRole('button', { name: 'Start with Free' }).click();
      await dev.waitForURL(`**/portal/${slug}/keys?subscribed=1`);
      await dev.getByLabel('Key name').fill('laptop');
      await dev.getByRole('button', { name: 'Create key' }).click();
      const secret = (await dev.getByTestId('secret').textContent())!.trim();
      expect(secret).toMatch(/^tg_live_/);
      // Samples right under the new key carry the real key, ready to paste.
      expect(await dev.getByTestId('new-key-sample-curl').textContent()).toContain(`Bearer ${secret}`);
      await shot(dev, 'dev-key-created');

      // ── calls through the gateway until the free quota stops them ──
      await waitFor(async () => (await call(secret)).status === 200, {
        timeoutMs: 20_000,
        intervalMs: 100,
        what: 'the new key to work at the gateway',
      });
      // One call from the reference page's try-it console, through the same gateway.
      await dev.goto(`${base}/portal/${slug}/apis/weather`);
      expect(await dev.getByTestId('sample-curl').first().textContent()).toContain(secret.slice(0, 16));
      await dev.getByLabel('Your API key').fill(secret);
      await dev.getByRole('button', { name: 'Send request' }).click();
      await expect.poll(() => dev.getByTestId('try-it-response').textContent(), { timeout: 20_000 }).toContain('HTTP 200');
      calls.push(200);
      await shot(dev, 'dev-try-it');
      let limited: { status: number; body: string } | null = null;
      for (let i = 0; i < 10 && !limited; i++) {
        const r = await call(secret);
        if (r.status === 429) limited = r;
      }
      expect(limited?.body).toMatch(/quota/i);
      expect(calls.filter((s) => s === 200)).toHaveLength(5);
      // The meter reads the ledger the worker writes from the gateway's usage batches.
      await waitFor(
        async () => {
          await dev.goto(`${base}/portal/${slug}/keys`);
          return (await dev.getByTestId('quota-meter').getAttribute('data-level')) === 'exhausted';
        },
        { timeoutMs: 30_000, intervalMs: 500, what: 'the quota meter to show the quota used up' },
      );
      await shot(dev, 'dev-quota-exhausted');

      // ── upgrade through Checkout (the stand-in's hosted page is served by the test) ──
      await dev.route('https://checkout.stripe.com/**', async (route) => {
        const id = route.request().url().split('/').pop()!;
        const session = standIn.objects.get(`|${id}`)!;
        await route.fulfill({
          contentType: 'text/html',
          body: `<!doctype html><html lang="en"><title>Checkout</title><main><h1>Pay Journey Weather</h1><p>Stripe stand-in checkout</p><a href="${String(session.success_url)}">Pay</a></main></html>`,
        });
      });
      await dev.goto(`${base}/portal/${slug}/pricing`);
      await dev.getByRole('button', { name: 'Switch to Pro' }).click();
      await dev.waitForURL('https://checkout.stripe.com/**');
      await shot(dev, 'dev-checkout');
      const sessionId = dev.url().split('/').pop()!;
      const session = standIn.objects.get(`|${sessionId}`)!;
      const tgSub = (session.metadata as Record<string, string>).tollgate_subscription_id!;
      await dev.getByRole('link', { name: 'Pay' }).click();
      await dev.waitForURL(`**/portal/${slug}/billing?checkout=success`);
      expect(await dev.getByTestId('pending-upgrade').count()).toBe(1);

      // Stripe takes the payment: the stand-in completes the session and its webhooks, signed,
      // reach the worker's endpoint.
      const paid = standIn.completeCheckout(sessionId);
      for (const event of paid.events) await signedWebhook(JSON.stringify(event));
      // The billing page refreshes itself and, seeing the paid plan active, moves the key over.
      await dev.getByTestId('upgrade-done').waitFor({ timeout: 20_000 });
      await shot(dev, 'dev-upgraded');

      // ── calls succeed again on the paid plan ──
      await waitFor(async () => (await call(secret)).status === 200, {
        timeoutMs: 20_000,
        intervalMs: 100,
        what: 'the key to serve on the paid plan',
      });
      for (let i = 0; i < 7; i++) expect((await call(secret)).status).toBe(200);
      const paidCalls = 8;
      const total = calls.length;

      // ── the developer sees every call in the usage chart ──
      await waitFor(
        async () => {
          await dev.goto(`${base}/portal/${slug}/usage?range=1h`);
          return Number((await dev.getByTestId('usage-total').textContent())!.replace(/,/g, '')) === total;
        },
        { timeoutMs: 30_000, intervalMs: 1000, what: `the usage chart to show ${total} calls` },
      );
      await shot(dev, 'dev-usage');
      await dev.goto(`${base}/portal/${slug}/billing`);
      await shot(dev, 'dev-billing');

      // ── Stripe: the hour closes (moved back in time here) and the worker reports it ──
      const ledger = await db.ledgerLine.findMany({ where: { subscriptionId: tgSub } });
      expect(ledger.reduce((a, l) => a + Number(l.quantity), 0)).toBe(paidCalls);
      await db.$executeRaw`UPDATE "LedgerLine" SET "hourStart" = "hourStart" - interval '2 hours' WHERE "subscriptionId" = ${tgSub}`;
      await waitFor(() => standIn.meterTotal() === paidCalls, {
        timeoutMs: 20_000,
        intervalMs: 200,
        what: `meter events to total ${paidCalls}`,
      });
      expect(standIn.meterEvents.every((e) => e.customer === session.customer)).toBe(true);

      // ── the owner sees the developer, the revenue and the usage ──
      await owner.goto(`${base}/t/${slug}/consumers`);
      expect(await owner.getByText(devEmail).count()).toBeGreaterThan(0);
      await shot(owner, 'owner-consumers');
      await owner.goto(`${base}/t/${slug}/analytics?range=24h`);
      const analytics = (await owner.locator('main').textContent())!;
      expect(analytics).toContain(devEmail);
      // Revenue by plan: the paid plan with exactly the billable calls made on it. (Amounts come
      // from ledger amounts, which nothing prices yet — see the portal report.)
      const proRevenue = owner.locator('section', { hasText: 'Revenue by plan' }).locator('tr', { hasText: 'Pro' });
      expect(await proRevenue.locator('td').nth(1).textContent()).toBe(String(paidCalls));
      await shot(owner, 'owner-analytics');
    } catch (err) {
      await dev.screenshot({ path: path.join(shots, 'zz-failure-developer.png'), fullPage: true }).catch(() => undefined);
      await owner.screenshot({ path: path.join(shots, 'zz-failure-owner.png'), fullPage: true }).catch(() => undefined);
      const redis = testRedis();
      const versions = await redis.hgetall(createKeyspace(prefix).policyVersions).catch(() => ({}));
      redis.disconnect();
      throw new Error(
        `${(err as Error).message}\npolicy versions: ${JSON.stringify(versions)}\ncalls: ${calls.join(',').slice(0, 300)}\nlast body: ${lastBody.slice(0, 500)}\n--- console ---\n${consoleApp.output().slice(-3000)}\n--- gateway ---\n${gateway.output().slice(-2000)}\n--- worker ---\n${worker.output().slice(-3000)}`,
      );
    } finally {
      await ownerCtx.close();
      await devCtx.close();
    }
  }, 240_000);
});
