import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { newId, type Db } from '@tollgate/db';
import { createLogger } from '@tollgate/config';
import { createStripeClient, createStripeWebhookHandler, createWebhookVerifier } from '@tollgate/billing';
import { startStripeStandIn, type StripeStandIn } from '@tollgate/billing/testing';
import { testEnv, uniquePrefix } from '../harness/index';
import { testDb } from '../harness/db';
import { axeViolations, ensureConsoleBuild, launchBrowser, startConsole, type Child } from './platform';
import { makePortalTenant, portalDeps, uniq } from '../portal/fixtures';
import * as portal from '../../apps/console/src/server/portal/index';
import type { PortalDeps } from '../../apps/console/src/server/portal/context';
import { createHttpServer } from '../../apps/worker/src/server';
import { createMetrics } from '../../apps/worker/src/metrics';

// The developer's billing and usage pages against the production build: invoices arrive the way
// Stripe sends them (the stand-in closes the period; its signed events go to the worker's webhook
// endpoint), and the usage page's own date range takes hostile input.

const SESSION_SECRET = 'portal-billing-usage-secret-at-least-32';
const WEBHOOK_SECRET = 'whsec_portal_billing_usage';
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
let db: Db;
let app: Child & { base: string };
let browser: Browser;
let standIn: StripeStandIn;
let deps: PortalDeps;
let worker: Server;
let workerUrl = '';
let t: Awaited<ReturnType<typeof makePortalTenant>>;

beforeAll(async () => {
  const build = ensureConsoleBuild();
  build.catch(() => undefined);
  db = testDb();
  standIn = await startStripeStandIn();
  deps = portalDeps(db, createStripeClient(standIn.settings));
  const logger = createLogger('billing-e2e', 'silent');
  worker = createHttpServer({
    logger,
    metrics: createMetrics(),
    ready: async () => ({ ready: true, checks: {} }),
    stripeWebhook: createStripeWebhookHandler({ db, webhookSecret: WEBHOOK_SECRET, logger }),
  });
  await new Promise<void>((r) => worker.listen(0, '127.0.0.1', () => r()));
  workerUrl = `http://127.0.0.1:${(worker.address() as AddressInfo).port}/webhooks/stripe`;
  t = await makePortalTenant(db);
  await build;
  const env = testEnv();
  app = await startConsole({ DATABASE_URL: env.databaseUrl, REDIS_URL: env.redisUrl, REDIS_PREFIX: uniquePrefix('pbill'), SESSION_SECRET });
  browser = await launchBrowser();
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await app?.stop();
  await new Promise<void>((r) => (worker ? worker.close(() => r()) : r()));
  deps?.redis.disconnect();
  await standIn?.stop();
  await db?.$disconnect();
});

async function deliver(event: Record<string, unknown>) {
  const payload = JSON.stringify(event);
  const res = await fetch(workerUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'stripe-signature': createWebhookVerifier().webhooks.generateTestHeaderString({ payload, secret: WEBHOOK_SECRET }),
    },
    body: payload,
  });
  expect(res.status, await res.clone().text()).toBe(200);
}

/** A developer of the tenant on the paid plan, activated the way Stripe does it; with a browser page signed in. */
async function paidDeveloper(): Promise<{ consumerId: string; stripeSubscriptionId: string; page: Page }> {
  const email = `${uniq('payer')}@example.com`;
  const s = await portal.signUpDeveloper(
    deps,
    t.tenant,
    { name: 'Payer', email, password: 'correct horse battery' },
    { ip: `10.9.${Math.floor(Math.random() * 250)}.1` },
  );
  const dev = (await portal.resolveDeveloper(
    db,
    SESSION_SECRET,
    t.tenant,
    await portal.createPortalToken(SESSION_SECRET, t.tenant.id, s.consumerId, portal.passwordVersion(s.passwordHash)),
  ))!;
  const checkout = await portal.subscribeToPlan(deps, dev, { planId: t.paidPlanId });
  const sessionId = (await db.subscription.findUniqueOrThrow({ where: { id: checkout.subscriptionId } })).stripeCheckoutSessionId!;
  const paid = standIn.completeCheckout(sessionId);
  for (const e of paid.events) await deliver(e);
  const page = await signedInPage(s);
  return { consumerId: s.consumerId, stripeSubscriptionId: paid.subscription.id, page };
}

/** A browser page carrying this developer's portal session cookie. */
async function signedInPage(s: { consumerId: string; passwordHash: string }): Promise<Page> {
  const page = await browser.newPage();
  page.setDefaultTimeout(20_000);
  const token = await portal.createPortalToken(SESSION_SECRET, t.tenant.id, s.consumerId, portal.passwordVersion(s.passwordHash));
  await page
    .context()
    .addCookies([{ name: portal.portalCookieName(t.tenant.slug), value: token, url: `${app.base}/portal/${t.tenant.slug}` }]);
  return page;
}

async function invoiceRows(page: Page): Promise<string[][]> {
  await page.goto(`${app.base}/portal/${t.tenant.slug}/billing`);
  await page.getByRole('heading', { name: 'Invoices' }).waitFor();
  return page
    .getByTestId('invoice-row')
    .evaluateAll((rows) =>
      rows.map((r) =>
        Array.from((r as unknown as { children: ArrayLike<{ textContent: string | null }> }).children, (c) => (c.textContent ?? '').trim()),
      ),
    );
}

describe('past invoices on the billing page, from Stripe invoice webhooks', () => {
  it("lists a closed period's invoice with number, period, amount, status and the hosted link; a later 'finalized' does not reopen it; A never sees B's", async () => {
    const a = await paidDeveloper();
    const b = await paidDeveloper();
    try {
      expect(await invoiceRows(a.page)).toEqual([]);
      expect(await a.page.getByText('No invoices yet').count()).toBe(1);

      // The period closes: Stripe finalizes the invoice ($29 flat fee + $1.25 usage)...
      const closed = standIn.closeInvoice(a.stripeSubscriptionId, { usageMinor: 125 });
      const [finalized, paid] = closed.events as [Record<string, unknown>, Record<string, unknown>];
      await deliver(finalized);
      const number = String(closed.invoice.number);
      const start = new Date(Number(closed.invoice.period_start) * 1000);
      const end = new Date(Number(closed.invoice.period_end) * 1000);
      const day = (d: Date) => `${d.toISOString().replace('T', ' ').slice(0, 16)} UTC`;
      let rows = await invoiceRows(a.page);
      expect(rows).toHaveLength(1);
      expect(rows[0]![0]).toBe(number);
      expect(rows[0]![2]).toBe('$30.25');
      expect(rows[0]![3]).toBe('open');
      // ...then it is paid; a redelivered 'finalized' arriving late leaves it paid.
      await deliver(paid);
      await deliver(finalized);
      rows = await invoiceRows(a.page);
      expect(rows).toHaveLength(1);
      expect(rows[0]!.slice(0, 4)).toEqual([number, `${day(start)} – ${day(end)}`, '$30.25', 'paid']);
      const stored = await db.invoice.findUniqueOrThrow({ where: { stripeInvoiceId: String(closed.invoice.id) } });
      expect(stored).toMatchObject({ number, status: 'paid', totalMinor: 3025n, periodStart: start, periodEnd: end });
      expect(await axeViolations(a.page, axeSource)).toEqual([]);
      const link = a.page.getByRole('link', { name: `View invoice ${number}` });
      expect(await link.getAttribute('href')).toBe(closed.invoice.hosted_invoice_url);

      // B has an invoice of their own and sees only it; A's page doesn't show it.
      const bClosed = standIn.closeInvoice(b.stripeSubscriptionId);
      for (const e of bClosed.events) await deliver(e);
      const bRows = await invoiceRows(b.page);
      expect(bRows.map((r) => r[0])).toEqual([String(bClosed.invoice.number)]);
      expect(bRows[0]![2]).toBe('$29.00');
      expect((await invoiceRows(a.page)).map((r) => r[0])).toEqual([number]);
      expect(await a.page.content()).not.toContain(String(bClosed.invoice.id));
    } finally {
      await a.page.close();
      await b.page.close();
    }
  }, 120_000);

  it('refuses an invoice event with a bad signature and lists nothing from it', async () => {
    const a = await paidDeveloper();
    try {
      const forged = standIn.closeInvoice(a.stripeSubscriptionId);
      const payload = JSON.stringify(forged.events[1]);
      const res = await fetch(workerUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'stripe-signature': createWebhookVerifier().webhooks.generateTestHeaderString({ payload, secret: 'whsec_someone_else' }),
        },
        body: payload,
      });
      expect(res.status).toBe(400);
      expect(await invoiceRows(a.page)).toEqual([]);
    } finally {
      await a.page.close();
    }
  }, 60_000);
});

describe('usage page: presets and a custom range', () => {
  const DAY = 86_400_000;
  const daysAgo = (n: number) => new Date(Math.floor(Date.now() / DAY) * DAY - n * DAY);
  const ymd = (d: Date) => d.toISOString().slice(0, 10);

  it('shows the calls of the chosen days and explains bad ranges instead of failing', async () => {
    const email = `${uniq('ranger')}@example.com`;
    const s = await portal.signUpDeveloper(
      deps,
      t.tenant,
      { name: 'Ranger', email, password: 'correct horse battery' },
      { ip: '10.7.7.7' },
    );
    const keyId = newId('key');
    // One call-day ten days ago, as compaction leaves it (hour and day rows), plus another developer's.
    const other = await portal.signUpDeveloper(
      deps,
      t.tenant,
      { name: 'Other', email: `${uniq('other')}@example.com`, password: 'correct horse battery' },
      { ip: '10.7.7.8' },
    );
    const rows = (consumerId: string, requests: number) =>
      (['hour', 'day'] as const).map((granularity) => ({
        tenantId: t.tenant.id,
        granularity,
        bucketStart: granularity === 'hour' ? new Date(daysAgo(10).getTime() + 12 * 3_600_000) : daysAgo(10),
        apiId: t.apiId,
        keyId: consumerId === s.consumerId ? keyId : newId('key'),
        consumerId,
        requests: BigInt(requests),
        status2xx: BigInt(requests),
        latencyBuckets: [0n, BigInt(requests)],
        latencySumMs: BigInt(requests),
      }));
    await db.usageRollup.createMany({ data: [...rows(s.consumerId, 12), ...rows(other.consumerId, 500)] });
    const page = await signedInPage(s);
    const usageUrl = `${app.base}/portal/${t.tenant.slug}/usage`;
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    try {
      await page.goto(`${usageUrl}?range=24h`);
      expect(await page.getByTestId('usage-total').textContent()).toBe('0');
      expect(await page.getByRole('link', { name: '24h' }).getAttribute('aria-current')).toBe('page');

      const from = ymd(daysAgo(14));
      const to = ymd(daysAgo(7));
      await page.getByLabel('From (UTC)').fill(from);
      await page.getByLabel('To (UTC)').fill(to);
      await page.getByRole('button', { name: 'Apply range' }).click();
      await page.waitForURL(`**/usage?from=${from}&to=${to}`);
      expect(await page.getByTestId('usage-total').textContent()).toBe('12');
      expect(await page.getByRole('heading', { name: `Requests over ${from} to ${to} (UTC)` }).count()).toBe(1);
      expect(await page.getByRole('link', { name: '24h' }).getAttribute('aria-current')).toBeNull();
      expect(await axeViolations(page, axeSource)).toEqual([]);
      // The key/API filter keeps the custom range.
      await page.getByRole('button', { name: 'Show' }).click();
      await page.waitForURL(/from=.*&to=.*keyId=/);
      expect(await page.getByTestId('usage-total').textContent()).toBe('12');

      const bad: Array<[string, RegExp]> = [
        [`from=garbage&to=${to}`, /from must be a date like 2026-11-28/],
        [`from=${to}&to=${from}`, /"from" must be on or before "to"/],
        [`from=${ymd(daysAgo(120))}&to=${to}`, /at most 90 days/],
        [`from=${from}`, /both "from" and "to"/],
        [`from=${ymd(daysAgo(-3))}&to=${ymd(daysAgo(-5))}`, /future/],
        [`from=2026-02-30&to=2026-03-01`, /not a real date/],
        [`from=${from}&from=${to}&to=${to}`, /from must be a date/],
        [`from=%3Cscript%3Ealert(1)%3C%2Fscript%3E&to=${to}`, /from must be a date/],
        [`from=${'9'.repeat(3000)}&to=${to}`, /from must be a date/],
      ];
      for (const [query, message] of bad) {
        const res = await page.goto(`${usageUrl}?${query}`);
        expect(res?.status(), query).toBe(200);
        expect(await page.getByTestId('usage-error').textContent(), query).toMatch(message);
        expect(await page.getByTestId('usage-total').count()).toBe(0);
        // Presets stay usable next to the error.
        expect(await page.getByRole('navigation', { name: 'Time range' }).getByRole('link').count()).toBe(4);
      }
      expect(await axeViolations(page, axeSource)).toEqual([]);
      // The echoed value is inert text: no script from the URL ever ran.
      expect(dialogs).toEqual([]);
    } finally {
      await page.close();
    }
  }, 120_000);
});
