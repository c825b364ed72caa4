import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { chromiumPath, testEnv, uniquePrefix, waitFor } from '../harness/index';
import { axeViolations, ensureConsoleBuild, freePort, serverEntry } from '../e2e/platform';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const appDir = path.join(root, 'apps/console');
const shots = path.join(root, 'test-results/screenshots');
const METRICS_TOKEN = 'browser-test-metrics-token-0123456789';

let server: ChildProcess | undefined;
let gateway: ChildProcess | undefined;
let worker: ChildProcess | undefined;
let gatewayPort = 0;
let upstream: Server;
let upstreamPort = 0;
let browser: Browser;
let page: Page;
let base = '';
const logs: string[] = [];

async function shot(name: string) {
  await page.screenshot({ path: path.join(shots, `console-${name}.png`), fullPage: true });
}

const axeSource = readFileSync(path.join(root, 'node_modules/axe-core/axe.min.js'), 'utf8');
const a11yFindings: string[] = [];

/** Runs axe-core on the current page and records its serious and critical violations. */
async function checkA11y(name: string) {
  for (const v of await axeViolations(page, axeSource)) a11yFindings.push(`${name}: ${v.id} (${v.impact}) at ${v.targets.join(' ')}`);
}

beforeAll(async () => {
  mkdirSync(shots, { recursive: true });
  await ensureConsoleBuild();
  upstream = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ ok: true, path: req.url, consumer: req.headers['x-tollgate-consumer'] ?? null }));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamPort = (upstream.address() as { port: number }).port;

  const port = await freePort();
  gatewayPort = await freePort();
  base = `http://127.0.0.1:${port}`;
  const env = testEnv();
  const prefix = uniquePrefix('console');
  const tsx = path.join(root, 'node_modules/.bin/tsx');
  const shared = { ...process.env, REDIS_URL: env.redisUrl, REDIS_PREFIX: prefix, LOG_LEVEL: 'warn', NODE_ENV: 'production' };
  // The data plane and the worker (outbox relay, usage ingestion) run for real, so the test call
  // goes through the gateway and lands in analytics.
  gateway = spawn(tsx, [path.join(root, 'apps/gateway/src/main.ts')], {
    cwd: root,
    env: {
      ...shared,
      GATEWAY_WORKERS: '1',
      GATEWAY_PORT: String(gatewayPort),
      GATEWAY_HOST: '127.0.0.1',
      GATEWAY_ADMIN_PORT: '0',
      GATEWAY_ADMIN_HOST: '127.0.0.1',
      GATEWAY_BASE_DOMAIN: 'localhost',
      GATEWAY_SPOOL_DIR: mkdtempSync(path.join(tmpdir(), 'tg-spool-')),
      GATEWAY_ACCESS_LOG: 'false',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  worker = spawn(tsx, [path.join(root, 'apps/worker/src/main.ts')], {
    cwd: root,
    env: {
      ...shared,
      DATABASE_URL: env.databaseUrl,
      WORKER_PORT: '0',
      WORKER_HOST: '127.0.0.1',
      OUTBOX_POLL_MS: '200',
      COMPACT_EVERY_MS: '2000',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const [name, p] of [
    ['gateway', gateway],
    ['worker', worker],
  ] as const) {
    p.stdout?.on('data', (d) => logs.push(`[${name}] ${String(d)}`));
    p.stderr?.on('data', (d) => logs.push(`[${name}] ${String(d)}`));
  }
  server = spawn(process.execPath, [serverEntry], {
    cwd: appDir,
    env: {
      ...process.env,
      NODE_ENV: 'production',
      CONSOLE_PORT: String(port),
      CONSOLE_HOST: '127.0.0.1',
      CONSOLE_METRICS_TOKEN: METRICS_TOKEN,
      DATABASE_URL: env.databaseUrl,
      REDIS_URL: env.redisUrl,
      REDIS_PREFIX: prefix,
      SESSION_SECRET: 'browser-test-session-secret-at-least-32-chars',
      CONSOLE_URL: base,
      GATEWAY_BASE_DOMAIN: 'localhost',
      GATEWAY_PORT: String(gatewayPort),
      LOG_LEVEL: 'warn',
      NEXT_TELEMETRY_DISABLED: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout?.on('data', (d) => logs.push(String(d)));
  server.stderr?.on('data', (d) => logs.push(String(d)));
  await waitFor(async () => (await fetch(`${base}/login`)).ok, { timeoutMs: 30_000, intervalMs: 200, what: 'the console to start' });
  await waitFor(async () => (await fetch(`http://127.0.0.1:${gatewayPort}/`)).status > 0, {
    timeoutMs: 30_000,
    intervalMs: 200,
    what: 'the gateway to start',
  });

  browser = await chromium.launch({
    executablePath: chromiumPath(),
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(15_000);
}, 300_000);

afterAll(async () => {
  await browser?.close();
  for (const p of [server, gateway, worker]) if (p?.pid && p.exitCode === null) p.kill('SIGTERM');
  await new Promise<void>((r) => (upstream ? upstream.close(() => r()) : r()));
});

describe('console in a browser', () => {
  it('an owner signs up, allows a local upstream, registers an API, creates a plan and issues a key', async () => {
    const slug = `acme-${Date.now().toString(36)}`;
    try {
      await page.goto(`${base}/signup`);
      await shot('01-signup');
      await checkA11y('signup');
      // Validation messages come back beside the fields and keep what was typed.
      await page.getByLabel('Your name').fill('Ada Owner');
      await page.getByLabel('Work e-mail').fill(`${slug}@example.com`);
      await page.getByLabel('Password').fill('short');
      await page.getByLabel('Company or product name').fill('Acme <script>');
      await page.getByLabel('Workspace address').fill(slug);
      await page.getByRole('button', { name: 'Create workspace' }).click();
      await expect.poll(() => page.getByTestId('error-summary').textContent()).toContain('Password');
      await expect.poll(() => page.getByLabel('Your name').inputValue()).toBe('Ada Owner');
      await shot('02-signup-errors');
      await page.getByLabel('Password').fill('correct horse battery staple');
      await page.getByLabel('Company or product name').fill('Acme Weather');
      await page.getByRole('button', { name: 'Create workspace' }).click();
      await page.waitForURL(`**/t/${slug}?welcome=1`);
      expect(await page.getByRole('heading', { level: 1 }).textContent()).toContain('Welcome to Acme Weather');
      await shot('03-overview');
      await checkA11y('overview');

      // The demo upstream is on 127.0.0.1: first it is refused, then allowed in settings.
      await page.goto(`${base}/t/${slug}/apis`);
      await shot('04-apis-empty');
      await checkA11y('apis-empty');
      await page.getByRole('link', { name: 'Register your first API' }).click();
      await page.locator('#f-name').fill('Weather API');
      await page.getByLabel('Slug').fill('weather');
      await page.getByLabel('Base path').fill('/weather');
      await page.getByLabel('Target 1 URL').fill(`http://127.0.0.1:${upstreamPort}`);
      await page.getByRole('button', { name: 'Register API' }).click();
      await expect.poll(() => page.locator('form [role="alert"]').first().textContent()).toContain('private');
      await shot('05-api-ssrf-refused');
      await checkA11y('api-new-with-error');

      await page.goto(`${base}/t/${slug}/settings`);
      await page.getByLabel('Allow upstream targets on private networks').check();
      await page.getByRole('button', { name: 'Save settings' }).click();
      await expect.poll(() => page.locator('form [role="status"]').first().textContent()).toContain('Settings saved');

      await page.goto(`${base}/t/${slug}/apis/new`);
      await page.locator('#f-name').fill('Weather API');
      await page.getByLabel('Slug').fill('weather');
      await page.getByLabel('Base path').fill('/weather');
      await page.getByLabel('Target 1 URL').fill(`http://127.0.0.1:${upstreamPort}`);
      await page.getByLabel('Portal visibility').selectOption('PUBLIC');
      await page.getByLabel('…or paste it').fill(
        JSON.stringify({
          openapi: '3.1.0',
          info: { title: 'Weather', version: '1.0.0' },
          paths: { '/forecast': { get: { responses: { '200': { description: 'ok' } } } } },
        }),
      );
      await page.getByRole('button', { name: 'Register API' }).click();
      await page.waitForURL(/\/apis\/api_[0-9a-z]+\?created=1$/);
      expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Weather API');
      expect(await page.getByText('1 paths').count()).toBe(1);
      await shot('06-api');
      await checkA11y('api');
      // An uploaded Swagger 2 file is refused with a reason, and the saved document stays.
      await page
        .locator('#f-openapiFile')
        .setInputFiles({ name: 'swagger.json', mimeType: 'application/json', buffer: Buffer.from('{"swagger":"2.0","info":{}}') });
      await page.getByRole('button', { name: 'Save changes' }).click();
      await expect.poll(() => page.locator('form [role="alert"]').first().textContent()).toContain('Swagger 2.0');
      await page.reload();
      expect(await page.getByText('1 paths').count()).toBe(1);

      await page.goto(`${base}/t/${slug}/plans`);
      await page.getByRole('link', { name: 'Create your first plan' }).click();
      await page.locator('#f-name').fill('Free');
      await page.getByLabel('Slug').fill('free');
      await page.locator('#f-rateLimit').fill('5');
      await page.getByLabel('Requests per month').fill('1000');
      await page.getByLabel('Monthly fee').fill('abc');
      await page.getByRole('button', { name: 'Create plan' }).click();
      await expect.poll(() => page.locator('#f-flatFee-error').textContent()).toContain('must be a number');
      await page.getByLabel('Monthly fee').fill('0');
      await page.getByRole('button', { name: 'Create plan' }).click();
      await page.waitForURL(/\/plans\/pln_[0-9a-z]+\?created=1$/);
      await shot('07-plan');
      await checkA11y('plan');

      await page.goto(`${base}/t/${slug}/keys`);
      await shot('08-keys-empty');
      await checkA11y('keys-empty');
      await page.locator('#f-name').fill('Browser test key');
      await page.getByLabel('Plan').selectOption({ label: 'Free' });
      await page.getByRole('button', { name: 'Issue key' }).click();
      const secret = (await page.getByTestId('secret').textContent({ timeout: 15_000 }))!.trim();
      expect(secret).toMatch(/^tg_live_[0-9A-Za-z]{28}$/);
      await shot('09-key-issued');
      await checkA11y('key-issued');
      // Shown once: after a reload only the prefix is on the page.
      await page.reload();
      expect(await page.content()).not.toContain(secret);
      expect(await page.getByText(`${secret.slice(0, 16)}…`).count()).toBe(1);

      // A test call through the running gateway with that key (the relay publishes it within a second).
      await page.goto(`${base}/t/${slug}/apis`);
      await page.getByRole('link', { name: 'Weather API' }).click();
      await page.getByLabel('Path (below the base path)').fill('/forecast');
      await page.getByLabel('API key').fill(secret);
      const send = async () => {
        await page.getByRole('button', { name: 'Send test call' }).click();
        await page.getByRole('button', { name: 'Send test call' }).waitFor();
        return (
          (await page
            .getByTestId('test-call-response')
            .textContent()
            .catch(() => '')) ?? ''
        );
      };
      await expect.poll(send, { timeout: 20_000, interval: 500 }).toMatch(/^200/);
      const answer = (await page.getByTestId('test-call-response').textContent())!;
      expect(answer).toContain('"ok":true');
      expect(answer).toContain('"path":"/forecast"');
      await shot('10-test-call');
      // Without a pasted key the console issues a temporary test key, waits for the gateway to
      // have it, calls, and revokes it.
      await page.getByLabel('API key').fill('');
      await expect.poll(send, { timeout: 20_000, interval: 500 }).toMatch(/^200/);

      // Edit the catch-all route: a response header set here comes back through the gateway.
      const edit = page.locator('details', { hasText: 'Edit any' });
      await edit.locator('summary').click();
      await edit.getByLabel('Set on the response to the client').fill('X-Served-By: tollgate\nBad Header: x');
      await edit.getByRole('button', { name: 'Save route' }).click();
      await expect.poll(() => edit.locator('[role="alert"]').first().textContent()).toContain('header name');
      await edit.getByLabel('Set on the response to the client').fill('X-Served-By: tollgate');
      await edit.getByLabel('Cache TTL (s)').fill('0');
      await edit.getByRole('button', { name: 'Save route' }).click();
      await expect.poll(() => edit.locator('[role="status"]').first().textContent()).toContain('Route saved');
      await checkA11y('api-route-edit');
      await expect.poll(send, { timeout: 20_000, interval: 500 }).toContain('x-served-by: tollgate');
      await shot('10b-route-transform');

      // The call shows up in analytics once the worker has applied the gateway's usage batch.
      await expect
        .poll(
          async () => {
            await page.goto(`${base}/t/${slug}/analytics?range=1h`);
            return page.locator('dl dd').first().textContent();
          },
          { timeout: 30_000, interval: 1000 },
        )
        .not.toBe('0');
      await shot('11-analytics');
      await checkA11y('analytics');
      await page.goto(`${base}/t/${slug}/audit`);
      for (const action of ['tenant.created', 'tenant.updated', 'api.created', 'plan.created', 'key.issued', 'key.revoked']) {
        expect(await page.getByText(action, { exact: true }).count(), action).toBeGreaterThan(0);
      }
      await shot('12-audit');
      await checkA11y('audit');
      await page.goto(`${base}/t/${slug}/settings`);
      await shot('13-settings');
      await checkA11y('settings');

      // A consumer added in the console, then its page: subscriptions, keys and usage.
      await page.goto(`${base}/t/${slug}/consumers`);
      await checkA11y('consumers-empty');
      await page.getByText('Add a consumer yourself').click();
      await page.getByLabel('E-mail').fill('billing@example.com');
      await page.locator('#f-consumer-name').fill('Billing service');
      await page.getByRole('button', { name: 'Add consumer' }).click();
      await page.waitForURL(/\/consumers\/con_[0-9a-z]+\?created=1$/);
      expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Billing service');
      await page.getByLabel('Key name').fill('Billing prod');
      await page.getByRole('button', { name: 'Issue key' }).click();
      expect((await page.getByTestId('secret').textContent({ timeout: 15_000 }))!.trim()).toMatch(/^tg_live_/);
      await page.reload();
      expect(await page.getByText('Billing prod').count()).toBe(1);
      expect(await page.getByRole('cell', { name: 'Free' }).count()).toBeGreaterThan(0);
      await shot('14-consumer');
      await checkA11y('consumer');
      await page.goto(`${base}/t/${slug}/consumers`);
      await checkA11y('consumers');

      // Keyboard: the skip link is the first stop and lands on the main content.
      await page.goto(`${base}/t/${slug}`);
      await page.keyboard.press('Tab');
      expect(
        await page.evaluate(
          () =>
            (globalThis as unknown as { document: { activeElement: { textContent: string } | null } }).document.activeElement?.textContent,
        ),
      ).toBe('Skip to content');

      // Log out: the workspace is closed, even to someone replaying the old session cookie.
      const old = (await page.context().cookies()).find((c) => c.name === 'tg_session')!;
      expect(old).toMatchObject({ httpOnly: true, sameSite: 'Lax' });
      await page.getByRole('button', { name: 'Log out' }).click();
      await page.waitForURL('**/login');
      await checkA11y('login');
      await page.context().addCookies([old]);
      await page.goto(`${base}/t/${slug}/keys`);
      await page.waitForURL('**/login');
      expect(a11yFindings, a11yFindings.join('\n')).toEqual([]);
    } catch (err) {
      await shot('zz-failure').catch(() => undefined);
      throw new Error(`${(err as Error).message}\n--- console server log ---\n${logs.join('').slice(-4000)}`);
    }
  }, 120_000);

  it('answers health and metrics probes', async () => {
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok' });
    // Behind the bearer token only (test/security/console-metrics.test.ts has the refusals).
    expect((await fetch(`${base}/metrics`)).status).toBe(401);
    const metrics = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('process_cpu_user_seconds_total');
  });

  it('shows a refused login in the form while the action answers 429 with Retry-After', async () => {
    // 10 attempts per e-mail per 15 minutes; the 11th is refused before the password is checked.
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    try {
      await p.goto(`${base}/login`);
      const email = `limited-${Date.now()}@example.com`;
      let last: { status: number; retryAfter: string | null } | undefined;
      for (let i = 0; i < 11; i++) {
        await p.getByLabel('E-mail').fill(email);
        await p.getByLabel('Password').fill(`wrong-${i}`);
        const [res] = await Promise.all([
          p.waitForResponse((r) => r.request().method() === 'POST' && r.request().headers()['next-action'] !== undefined),
          p.getByRole('button', { name: 'Log in' }).click(),
        ]);
        last = { status: res.status(), retryAfter: await res.headerValue('retry-after') };
        await expect.poll(() => p.locator('form [role="alert"]').textContent()).toMatch(i < 10 ? /incorrect/i : /too many attempts/i);
      }
      expect(last?.status).toBe(429);
      expect(Number(last?.retryAfter)).toBeGreaterThanOrEqual(1);
    } finally {
      await ctx.close();
    }
  }, 60_000);

  it('refuses a cross-site form post to a server action', async () => {
    const res = await fetch(`${base}/login`, {
      method: 'POST',
      headers: { origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded', 'next-action': 'x' },
      body: 'email=a%40b.example&password=x',
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
  });
});
