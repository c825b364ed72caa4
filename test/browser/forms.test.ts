import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { testEnv, uniquePrefix } from '../harness/index';
import { axeViolations, ensureConsoleBuild, launchBrowser, startConsole, type Child } from '../e2e/platform';

// Issue 21, items 1, 4 and 5: a failed submit keeps every value (but passwords), explains itself
// in product words in a summary that takes focus and links to the fields, and a private upstream
// can be allowed in place. The console runs alone: nothing here needs the gateway.

const SESSION_SECRET = 'forms-test-session-secret-at-least-32-chars';
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

let app: Child & { base: string };
let browser: Browser;
let page: Page;
const slug = `forms-${Date.now().toString(36)}`;
const email = `${slug}@example.com`;
const password = 'correct horse battery staple';

const summary = () => page.getByTestId('error-summary');
const focusedTestId = () =>
  page.evaluate(
    () =>
      (
        globalThis as unknown as { document: { activeElement: { getAttribute(n: string): string | null } | null } }
      ).document.activeElement?.getAttribute('data-testid') ?? null,
  );

async function expectA11yClean(name: string) {
  const found = await axeViolations(page, axeSource);
  expect(found, `${name}: ${JSON.stringify(found)}`).toEqual([]);
}

/** No internal field names or validator jargon in what a person reads. */
async function expectHumanWording() {
  const text = (await summary().textContent()) ?? '';
  expect(text).not.toMatch(/invalid input|tenantSlug|tenantName|flatFeeMinor|targets\.\d|basePath|portalHost/);
  return text;
}

beforeAll(async () => {
  await ensureConsoleBuild();
  const env = testEnv();
  app = await startConsole({ DATABASE_URL: env.databaseUrl, REDIS_URL: env.redisUrl, REDIS_PREFIX: uniquePrefix('forms'), SESSION_SECRET });
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(15_000);
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await app?.stop();
});

describe('console forms after a validation error', () => {
  it('signup keeps every value but the password, names the fields in words and focuses the summary', async () => {
    await page.goto(`${app.base}/signup`);
    await page.getByLabel('Your name').fill('Ada Owner');
    await page.getByLabel('Work e-mail').fill(email);
    await page.getByLabel('Password').fill('short');
    await page.getByLabel('Company or product name').fill('Forms Weather');
    await page.getByLabel('Workspace address').fill('No Spaces Allowed!');
    await page.getByRole('button', { name: 'Create workspace' }).click();
    await summary().waitFor();
    const text = await expectHumanWording();
    expect(text).toContain('Workspace address');
    expect(text).toContain('Password');
    await expect.poll(focusedTestId).toBe('error-summary');
    // Each problem links to its field, and the field says it is invalid and why.
    expect(
      await summary()
        .getByRole('link', { name: /Workspace address/ })
        .getAttribute('href'),
    ).toBe('#f-tenantSlug');
    expect(await page.locator('#f-tenantSlug').getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('#f-tenantSlug').getAttribute('aria-describedby')).toBe('f-tenantSlug-error');
    expect(await page.getByLabel('Your name').inputValue()).toBe('Ada Owner');
    expect(await page.getByLabel('Work e-mail').inputValue()).toBe(email);
    expect(await page.getByLabel('Company or product name').inputValue()).toBe('Forms Weather');
    expect(await page.getByLabel('Workspace address').inputValue()).toBe('No Spaces Allowed!');
    expect(await page.getByLabel('Password').inputValue()).toBe('');
    await expectA11yClean('signup with errors');

    await page.getByLabel('Password').fill(password);
    await page.getByLabel('Workspace address').fill(slug);
    await page.getByRole('button', { name: 'Create workspace' }).click();
    await page.waitForURL(`**/t/${slug}?welcome=1`);
  });

  it('a taken workspace address says which one is taken', async () => {
    const ctx = await browser.newContext();
    const other = await ctx.newPage();
    try {
      await other.goto(`${app.base}/signup`);
      await other.getByLabel('Your name').fill('Bea Other');
      await other.getByLabel('Work e-mail').fill(`other-${email}`);
      await other.getByLabel('Password').fill(password);
      await other.getByLabel('Company or product name').fill('Other Weather');
      await other.getByLabel('Workspace address').fill(slug);
      await other.getByRole('button', { name: 'Create workspace' }).click();
      const text = (await other.getByTestId('error-summary').textContent()) ?? '';
      expect(text).toContain('Workspace address is already taken');
      expect(text).not.toContain('that workspace or account already exists');
      expect(await other.getByLabel('Work e-mail').inputValue()).toBe(`other-${email}`);
    } finally {
      await ctx.close();
    }
  });

  it('Register API keeps the upstream and every other value, then allows a private target in place', async () => {
    await page.goto(`${app.base}/t/${slug}/apis/new`);
    await page.locator('#f-name').fill('Weather API');
    await page.getByLabel('Slug').fill('Weather API!');
    await page.getByLabel('Base path').fill('/weather');
    await page.getByLabel('Description').fill('Forecasts for everyone.');
    await page.getByLabel('Target 1 URL').fill('http://127.0.0.1:9/v2');
    await page.getByLabel('Target 1 weight').fill('3');
    await page.getByRole('button', { name: '+ Add target' }).click();
    await page.getByLabel('Target 2 URL').fill('http://127.0.0.1:10/a,b');
    await page.getByLabel('Portal visibility').selectOption('PUBLIC');
    await page.getByLabel('Connect timeout (ms)').fill('1500');
    await page.getByLabel('Accept keys in the query string (?api_key=)').check();
    const doc = JSON.stringify({ openapi: '3.1.0', info: { title: 'Weather', version: '1.0.0' }, paths: {} });
    await page.getByLabel('…or paste it').fill(doc);
    await page.getByRole('button', { name: 'Register API' }).click();

    // An error in the slug: everything else is still there, the target rows included.
    await summary().waitFor();
    expect(await expectHumanWording()).toContain('Slug');
    await expect.poll(focusedTestId).toBe('error-summary');
    const kept = async () => {
      expect(await page.locator('#f-name').inputValue()).toBe('Weather API');
      expect(await page.getByLabel('Base path').inputValue()).toBe('/weather');
      expect(await page.getByLabel('Description').inputValue()).toBe('Forecasts for everyone.');
      expect(await page.getByLabel('Target 1 URL').inputValue()).toBe('http://127.0.0.1:9/v2');
      expect(await page.getByLabel('Target 1 weight').inputValue()).toBe('3');
      expect(await page.getByLabel('Target 2 URL').inputValue()).toBe('http://127.0.0.1:10/a,b');
      expect(await page.getByLabel('Portal visibility').inputValue()).toBe('PUBLIC');
      expect(await page.getByLabel('Connect timeout (ms)').inputValue()).toBe('1500');
      expect(await page.getByLabel('Accept keys in the query string (?api_key=)').isChecked()).toBe(true);
      expect(await page.getByLabel('…or paste it').inputValue()).toBe(doc);
    };
    await kept();
    await expectA11yClean('register API with errors');

    // Fix the slug only: now the loopback target is refused, with the fix offered in place.
    await page.getByLabel('Slug').fill('weather');
    await page.getByRole('button', { name: 'Register API' }).click();
    const fix = page.getByRole('button', { name: 'Allow private targets for this workspace and save' });
    await fix.waitFor();
    const text = await expectHumanWording();
    expect(text).toContain('Target 1 URL');
    expect(await page.getByLabel('Target 1 URL').getAttribute('aria-invalid')).toBe('true');
    await kept();
    await expectA11yClean('register API with the private-target fix');

    await fix.click();
    await page.waitForURL(/\/apis\/api_[0-9a-z]+\?created=1$/).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await page.locator('main').textContent()}`);
    });
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Weather API');
    await page.goto(`${app.base}/t/${slug}/settings`);
    expect(await page.getByLabel('Allow upstream targets on private networks').isChecked()).toBe(true);
  });

  it('the plan form keeps the money fields and the granted APIs after an error', async () => {
    await page.goto(`${app.base}/t/${slug}/plans/new`);
    await page.locator('#f-name').fill('Pro');
    await page.getByLabel('Slug').fill('pro');
    await page.locator('#f-rateLimit').fill('7');
    await page.getByLabel('Requests per month').fill('5000');
    await page.getByLabel('Monthly fee').fill('12.345');
    await page.getByLabel('Overage price').fill('0.02');
    await page.getByRole('button', { name: 'Create plan' }).click();
    await summary().waitFor();
    const text = await expectHumanWording();
    expect(text).toContain('Monthly fee');
    expect(await page.getByLabel('Monthly fee').inputValue()).toBe('12.345');
    expect(await page.getByLabel('Overage price').inputValue()).toBe('0.02');
    expect(await page.locator('#f-rateLimit').inputValue()).toBe('7');
    expect(await page.getByLabel('Requests per month').inputValue()).toBe('5000');
    expect(await page.getByLabel('Weather API').isChecked()).toBe(true);
    await page.getByLabel('Monthly fee').fill('12.50');
    await page.getByRole('button', { name: 'Create plan' }).click();
    await page.waitForURL(/\/plans\/pln_[0-9a-z]+\?created=1$/);
  });

  it('settings keep the other values when the portal host is refused', async () => {
    await page.goto(`${app.base}/t/${slug}/settings`);
    await page.getByLabel('Workspace name').fill('Forms Weather Ltd');
    await page.getByLabel('Approve portal developers before they get keys').check();
    await page.getByLabel('Developer portal host').fill('http://not a host');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await summary().waitFor();
    expect(await expectHumanWording()).toContain('Developer portal host');
    expect(await page.getByLabel('Workspace name').inputValue()).toBe('Forms Weather Ltd');
    expect(await page.getByLabel('Approve portal developers before they get keys').isChecked()).toBe(true);
    expect(await page.getByLabel('Developer portal host').inputValue()).toBe('http://not a host');
  });

  it('View portal leads from the console nav and from a public API to the portal', async () => {
    await page.goto(`${app.base}/t/${slug}/apis`);
    await page
      .getByRole('row', { name: /Weather API/ })
      .getByRole('link', { name: 'View in portal' })
      .click();
    await page.waitForURL(`**/portal/${slug}/apis/weather`);
    expect((await page.getByRole('heading', { level: 1 }).textContent())?.trim()).toBeTruthy();
    await page.goto(`${app.base}/t/${slug}`);
    await page.getByRole('navigation', { name: 'Workspace', exact: true }).getByRole('link', { name: 'View portal' }).click();
    await page.waitForURL(`**/portal/${slug}`);
    expect(await page.getByText('Weather API').count()).toBeGreaterThan(0);
  });

  it('analytics keeps refusals by policy apart from errors', async () => {
    await page.goto(`${app.base}/t/${slug}/analytics`);
    const stat = page.locator('dl > div', { hasText: 'Errors (5xx)' });
    expect(await stat.textContent()).toContain('refused by policy: missing or bad key, rate limit or used-up quota (401, 403, 429)');
    expect(await page.getByText('Error rate').count()).toBe(0);
    await expectA11yClean('analytics');
  });

  it('login keeps the e-mail, never the password, and says what to do', async () => {
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    p.setDefaultTimeout(10_000);
    try {
      await p.goto(`${app.base}/login`);
      await p.locator('#f-email').fill(email);
      await p.locator('#f-password').fill('wrong password entirely');
      await p.getByRole('button', { name: 'Log in', exact: true }).click();
      await p.getByTestId('error-summary').waitFor();
      expect(await p.locator('#f-email').inputValue()).toBe(email);
      expect(await p.locator('#f-password').inputValue()).toBe('');
    } finally {
      await ctx.close();
    }
  });
});
