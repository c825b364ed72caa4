import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { newId, type Db } from '@tollgate/db';
import { displayPrefix, generateApiKey, hashApiKey, hashPassword } from '@tollgate/keys';
import { testEnv, uniquePrefix } from '../harness/index';
import { testDb } from '../harness/db';
import { ensureConsoleBuild, axeViolations, launchBrowser, startConsole, type Child } from './platform';
import { OPENAPI, uniq } from '../portal/fixtures';

// Every portal page, signed out and signed in, checked by axe-core in a real browser: no
// serious or critical violations. Data is seeded straight into the database (no gateway needed).

const SESSION_SECRET = 'a11y-test-session-secret-at-least-32-chars';
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

let db: Db;
let app: Child & { base: string };
let browser: Browser;
let page: Page;
let slug = '';
let otherSlug = '';
const password = 'a11y passphrase 123';
let email = '';

beforeAll(async () => {
  const build = ensureConsoleBuild();
  build.catch(() => undefined); // awaited below; this only keeps an early failure from being 'unhandled'
  db = testDb();
  const tenantId = newId('tenant');
  slug = uniq('a11y');
  await db.tenant.create({ data: { id: tenantId, slug, name: 'Accessible Weather' } });
  otherSlug = uniq('a11y-other');
  await db.tenant.create({ data: { id: newId('tenant'), slug: otherSlug, name: 'Other Weather' } });
  const apiId = newId('api');
  await db.api.create({
    data: {
      id: apiId,
      tenantId,
      name: 'Weather API',
      slug: 'weather',
      basePath: '/weather',
      visibility: 'PUBLIC',
      openapi: OPENAPI,
      description: 'Forecasts.',
    },
  });
  const free = newId('plan');
  const pro = newId('plan');
  await db.plan.create({ data: { id: free, tenantId, name: 'Free', slug: 'free', monthlyQuota: 100, rateLimit: 10 } });
  await db.plan.create({
    data: {
      id: pro,
      tenantId,
      name: 'Pro',
      slug: 'pro',
      monthlyQuota: 100_000,
      quotaMode: 'OVERAGE',
      flatFeeMinor: 2900,
      overageUnitPriceMinor: 1,
    },
  });
  await db.planApi.createMany({
    data: [
      { planId: free, apiId },
      { planId: pro, apiId },
    ],
  });
  const consumerId = newId('consumer');
  email = `${uniq('dev')}@example.com`;
  await db.consumer.create({ data: { id: consumerId, tenantId, email, name: 'Ada Dev', passwordHash: await hashPassword(password) } });
  const subId = newId('subscription');
  const now = new Date();
  await db.subscription.create({
    data: {
      id: subId,
      tenantId,
      consumerId,
      planId: free,
      status: 'ACTIVE',
      currentPeriodStart: now,
      currentPeriodEnd: new Date(now.getTime() + 30 * 86_400_000),
    },
  });
  const secret = generateApiKey('live');
  const keyId = newId('key');
  await db.apiKey.create({
    data: {
      id: keyId,
      tenantId,
      consumerId,
      subscriptionId: subId,
      name: 'laptop',
      hash: hashApiKey(secret),
      prefix: displayPrefix(secret),
    },
  });
  // 85 of 100 used: the quota meter shows its 80% warning.
  await db.ledgerLine.create({
    data: {
      id: newId('ledger'),
      tenantId,
      subscriptionId: subId,
      periodStart: now,
      hourStart: new Date(Math.floor(now.getTime() / 3_600_000) * 3_600_000),
      quantity: 85n,
      identifier: `a11y-${keyId}`,
    },
  });
  await db.usageRollup.create({
    data: {
      tenantId,
      granularity: 'minute',
      bucketStart: new Date(Math.floor(Date.now() / 60_000) * 60_000 - 120_000),
      apiId,
      keyId,
      consumerId,
      requests: 85n,
      status2xx: 80n,
      status4xx: 5n,
      latencyBuckets: [0n, 10n, 75n],
      latencySumMs: 170n,
    },
  });
  await build;
  const env = testEnv();
  app = await startConsole({ DATABASE_URL: env.databaseUrl, REDIS_URL: env.redisUrl, REDIS_PREFIX: uniquePrefix('a11y'), SESSION_SECRET });
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(20_000);
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await app?.stop();
  await db?.$disconnect();
});

async function check(path: string) {
  const res = await page.goto(`${app.base}${path}`);
  expect(res?.status(), path).toBeLessThan(400);
  const violations = await axeViolations(page, axeSource);
  expect(violations, `${path}: ${JSON.stringify(violations, null, 1)}`).toEqual([]);
}

describe('portal accessibility (axe-core, no serious or critical violations)', () => {
  it('signed-out pages: catalog, API reference, pricing, signup, login, forgot and reset', async () => {
    for (const p of ['', '/apis/weather', '/pricing', '/signup', '/login', '/forgot', '/reset?token=x']) await check(`/portal/${slug}${p}`);
    // A failed form shows its errors accessibly too.
    await page.goto(`${app.base}/portal/${slug}/signup`);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.locator('form [role="alert"]').first().waitFor();
    expect(await axeViolations(page, axeSource)).toEqual([]);
  }, 120_000);

  it("signed-in pages: keys with the quota warning, usage, billing, pricing and the reference with samples; the session does not open another tenant's portal", async () => {
    await page.goto(`${app.base}/portal/${slug}/login`);
    await page.getByLabel('E-mail').fill(email);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(`**/portal/${slug}/keys`);
    expect(await page.getByTestId('quota-meter').getAttribute('data-level')).toBe('warning');
    for (const p of ['/keys', '/usage?range=1h', '/billing', '/pricing', '/apis/weather', '']) await check(`/portal/${slug}${p}`);

    // The same browser on another tenant's portal is signed out there, even with this tenant's
    // session copied under the other tenant's cookie name and path.
    const cookie = (await page.context().cookies()).find((c) => c.name.startsWith('tg_portal_'))!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: `/portal/${slug}` });
    await page.goto(`${app.base}/portal/${otherSlug}/keys`);
    await page.waitForURL(`**/portal/${otherSlug}/login`);
    await page
      .context()
      .addCookies([{ ...cookie, name: `tg_portal_${otherSlug.replace(/[^a-z0-9]/g, '_')}`, path: `/portal/${otherSlug}` }]);
    await page.goto(`${app.base}/portal/${otherSlug}/billing`);
    await page.waitForURL(`**/portal/${otherSlug}/login`);
    expect(await page.getByTestId('portal-user').count()).toBe(0);
  }, 120_000);
});
