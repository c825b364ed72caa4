import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { newId, type Db } from '@tollgate/db';
import { hashPassword } from '@tollgate/keys';
import { testEnv, uniquePrefix, waitFor } from '../harness/index';
import { testDb } from '../harness/db';
import { axeViolations, ensureConsoleBuild, launchBrowser, startConsole, type Child } from './platform';
import { makePortalTenant, uniq } from '../portal/fixtures';
import { createSessionToken } from '../../apps/console/src/server/console/session';

// A tenant's portal on its own host, against the production build (dist/main.js) with real
// requests carrying a Host header (node:http, since fetch may not set Host), and a browser that
// resolves the portal hosts to 127.0.0.1.

const SESSION_SECRET = 'portal-host-test-session-secret-32-chars';
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
let db: Db;
let app: Child & { base: string };
let port = 0;
let browser: Browser;
let x: Awaited<ReturnType<typeof makePortalTenant>>;
let y: Awaited<ReturnType<typeof makePortalTenant>>;
let hostX = '';
let hostY = '';
let ownerId = '';
const email = `${uniq('dev')}@example.com`;
const password = 'portal host passphrase';

type Res = { status: number; headers: Record<string, string | string[] | undefined>; body: string };

/** One request to the console with the given Host header; redirects are returned, not followed. */
function call(path: string, opts: { host: string; method?: string; headers?: Record<string, string>; body?: string }): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: { host: opts.host, ...opts.headers } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

const cookieName = (slug: string) => `tg_portal_${slug.replace(/[^a-z0-9]/g, '_')}`;
/** Links and form targets in server-rendered HTML (the flight data also names /portal/[tenant] route files). */
const hrefs = (html: string) => [...html.matchAll(/\s(?:href|action)="([^"]*)"/g)].map((m) => m[1]!);

beforeAll(async () => {
  const build = ensureConsoleBuild();
  build.catch(() => undefined);
  db = testDb();
  x = await makePortalTenant(db);
  y = await makePortalTenant(db);
  hostX = `developers.${x.tenant.slug}.test`;
  hostY = `portal.${y.tenant.slug}.test`;
  await db.tenant.update({ where: { id: x.tenant.id }, data: { portalHost: hostX } });
  await db.tenant.update({ where: { id: y.tenant.id }, data: { portalHost: hostY } });
  // A row claiming the console's own host (written past validation): must never take it over.
  await db.tenant.create({ data: { id: newId('tenant'), slug: uniq('hz'), name: 'Hijacker', portalHost: '127.0.0.1' } });
  const consumerId = newId('consumer');
  await db.consumer.create({
    data: { id: consumerId, tenantId: x.tenant.id, email, name: 'Host Dev', passwordHash: await hashPassword(password) },
  });
  const now = new Date();
  await db.subscription.create({
    data: {
      id: newId('subscription'),
      tenantId: x.tenant.id,
      consumerId,
      planId: x.freePlanId,
      status: 'ACTIVE',
      currentPeriodStart: now,
      currentPeriodEnd: new Date(now.getTime() + 30 * 86_400_000),
    },
  });
  // The same e-mail is a developer of Y too: X's session still must not open Y's portal.
  await db.consumer.create({
    data: { id: newId('consumer'), tenantId: y.tenant.id, email, name: 'Host Dev', passwordHash: await hashPassword(password) },
  });
  ownerId = newId('user');
  await db.user.create({
    data: { id: ownerId, email: `${uniq('owner')}@example.com`, name: 'Owner', passwordHash: await hashPassword(password) },
  });
  await db.membership.create({ data: { id: newId('membership'), tenantId: x.tenant.id, userId: ownerId, role: 'OWNER' } });
  await build;
  const env = testEnv();
  app = await startConsole({
    DATABASE_URL: env.databaseUrl,
    REDIS_URL: env.redisUrl,
    REDIS_PREFIX: uniquePrefix('phost'),
    SESSION_SECRET,
  });
  port = Number(new URL(app.base).port);
  browser = await launchBrowser([`--host-resolver-rules=MAP ${hostX} 127.0.0.1, MAP ${hostY} 127.0.0.1`]);
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await app?.stop();
  await db?.$disconnect();
});

describe("a tenant's portal on its own host", () => {
  it('serves the portal at the root with links that stay on the host, for any port and letter case', async () => {
    for (const host of [hostX, `${hostX}:${port}`, hostX.toUpperCase(), `${hostX}.`]) {
      const res = await call('/', { host });
      expect(res.status, host).toBe(200);
      expect(res.body).toContain(`${x.tenant.name} APIs`);
      const links = hrefs(res.body).filter((h) => h.startsWith('/') && !h.startsWith('/_next/'));
      expect(links).toEqual(expect.arrayContaining(['/', '/pricing', '/apis/weather', '/login', '/signup']));
      expect(links.filter((h) => h.startsWith('/portal'))).toEqual([]);
    }
    const ref = await call('/apis/weather', { host: hostX });
    expect(ref.status).toBe(200);
    expect(ref.body).toContain('getForecast');
    expect((await call('/pricing', { host: hostX })).body).toContain('Pro');
    const login = await call('/login', { host: hostX });
    expect(login.body).toContain('Forgot your password?');
    expect(login.body).not.toContain('New to Tollgate?');
    // Signed out, a developer page redirects to the host's own login page.
    const keys = await call('/keys', { host: hostX });
    expect(keys.status).toBe(307);
    expect(keys.headers.location).toBe('/login');
  });

  it('reaches nothing but the portal through a portal host: no control plane, admin API, metrics or other portal', async () => {
    for (const path of [
      '/app',
      `/t/${x.tenant.slug}/settings`,
      `/t/${x.tenant.slug}`,
      '/api/v1/apis',
      '/api/v1/openapi.json',
      '/metrics',
      `/portal/${x.tenant.slug}`,
      `/portal/${y.tenant.slug}/login`,
      '/invite/abc',
      '/%2e%2e/t/x',
      '/..%2fapi/v1/apis',
    ]) {
      const res = await call(path, { host: hostX });
      expect(res.status, path).toBe(404);
      expect(res.body).not.toMatch(/at .+\.(js|ts):\d+/);
    }
    const post = await call('/api/v1/apis', { host: hostX, method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(post.status).not.toBe(201);
    expect(post.status).toBeGreaterThanOrEqual(400);
  });

  it("leaves every other host to the console: unknown hosts, the console's own host (even if a row claims it), a spoofed marker header", async () => {
    const unknown = await call('/login', { host: 'unknown.example.test' });
    expect(unknown.status).toBe(200);
    expect(unknown.body).toContain('New to Tollgate?');
    const viaPath = await call(`/portal/${x.tenant.slug}`, { host: 'unknown.example.test' });
    expect(viaPath.status).toBe(200);
    expect(hrefs(viaPath.body)).toContain(`/portal/${x.tenant.slug}/pricing`);
    const consoleHost = await call('/login', { host: `127.0.0.1:${port}` });
    expect(consoleHost.body).toContain('New to Tollgate?');
    // A client can't claim to be on a portal host: the proxy drops the header before rendering.
    const spoofed = await call(`/portal/${x.tenant.slug}`, {
      host: `127.0.0.1:${port}`,
      headers: { 'x-tollgate-portal-host': x.tenant.slug },
    });
    expect(hrefs(spoofed.body)).toContain(`/portal/${x.tenant.slug}/pricing`);
    expect(hrefs(spoofed.body)).not.toContain('/pricing');
    for (const host of ['', 'developers..test', `${hostX}:99999999`, `evil.${hostX}`, `${hostX}.evil.test`, '[::1]']) {
      const res = await call('/', { host });
      expect(res.body, host).not.toContain(`${x.tenant.name} APIs`);
    }
  });

  it('logs in, creates a key, shows usage and logs out on the own host; the session cookie is on / and bound to the tenant', async () => {
    const page = await browser.newPage();
    page.setDefaultTimeout(20_000);
    const origin = `http://${hostX}:${port}`;
    try {
      await page.goto(`${origin}/`);
      await page.getByRole('link', { name: 'Log in' }).click();
      await page.waitForURL(`${origin}/login`);
      await page.getByLabel('E-mail').fill(email);
      await page.getByLabel('Password').fill(password);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.waitForURL(`${origin}/keys`);
      expect(await page.getByTestId('portal-user').textContent()).toBe(email);
      // The nav marks the page by the address the browser shows (no /portal prefix here).
      const nav = page.getByRole('navigation', { name: 'Portal' });
      expect(await nav.getByRole('link', { name: 'Keys' }).getAttribute('aria-current')).toBe('page');
      expect(await nav.getByRole('link', { name: 'Keys' }).getAttribute('href')).toBe('/keys');

      const cookie = (await page.context().cookies(origin)).find((c) => c.name === cookieName(x.tenant.slug));
      expect(cookie).toMatchObject({ path: '/', domain: hostX, httpOnly: true, sameSite: 'Lax' });

      expect(await axeViolations(page, axeSource)).toEqual([]);
      await page.getByLabel('Key name').fill('laptop');
      await page.getByRole('button', { name: 'Create key' }).click();
      await expect.poll(() => page.getByText('copy it now').count()).toBeGreaterThan(0);
      expect(await page.locator('a[href^="/portal/"], form[action^="/portal/"]').count()).toBe(0);
      await page.getByRole('navigation', { name: 'Portal' }).getByRole('link', { name: 'Usage' }).click();
      await page.waitForURL(`${origin}/usage`);
      await page.getByTestId('usage-total').waitFor();

      // The token replayed by hand: good on X's host, refused on Y's host under either cookie name.
      const token = cookie!.value;
      const onX = await call('/billing', { host: hostX, headers: { cookie: `${cookieName(x.tenant.slug)}=${token}` } });
      expect(onX.status).toBe(200);
      expect(onX.body).toContain(email);
      for (const name of [cookieName(y.tenant.slug), cookieName(x.tenant.slug)]) {
        const onY = await call('/billing', { host: hostY, headers: { cookie: `${name}=${token}` } });
        expect(onY.status, name).toBe(307);
        expect(onY.headers.location).toBe('/login');
      }
      // And the browser itself: Y's host shows it signed out.
      await page.goto(`http://${hostY}:${port}/keys`);
      await page.waitForURL(`http://${hostY}:${port}/login`);
      expect(await page.getByTestId('portal-user').count()).toBe(0);

      await page.goto(`${origin}/keys`);
      await page.getByRole('button', { name: 'Log out' }).click();
      await page.waitForURL(`${origin}/`);
      expect(await page.getByTestId('portal-user').count()).toBe(0);
      expect((await page.context().cookies(origin)).find((c) => c.name === cookieName(x.tenant.slug))).toBeUndefined();
    } finally {
      await page.close();
    }
  }, 120_000);

  it('refuses a cross-site post to a portal action (the login) on the own host; the same post from the host itself signs in', async () => {
    // The browser's own login request is captured and replayed: once with another site's Origin
    // (what a hostile page's auto-submitting form sends), once unchanged.
    const page = await browser.newPage();
    page.setDefaultTimeout(20_000);
    const origin = `http://${hostX}:${port}`;
    try {
      await page.goto(`${origin}/login`);
      await page.getByLabel('E-mail').fill(email);
      await page.getByLabel('Password').fill(password);
      const [req] = await Promise.all([
        page.waitForRequest((r) => r.method() === 'POST' && r.url() === `${origin}/login`),
        page.getByRole('button', { name: 'Log in' }).click(),
      ]);
      await page.waitForURL(`${origin}/keys`);
      const headers = await req.allHeaders();
      expect(headers['next-action']).toBeTruthy();
      const replay = (o: string | null) =>
        call('/login', {
          host: `${hostX}:${port}`,
          method: 'POST',
          headers: {
            'next-action': headers['next-action']!,
            'content-type': headers['content-type']!,
            accept: 'text/x-component',
            ...(o === null ? {} : { origin: o }),
          },
          body: req.postData() ?? '',
        });
      const sessionCookies = (r: Res) =>
        ([] as string[]).concat(r.headers['set-cookie'] ?? []).filter((c) => c.startsWith(`${cookieName(x.tenant.slug)}=`));
      for (const evil of ['http://evil.example', `http://${hostY}:${port}`, app.base, 'null']) {
        const refused = await replay(evil);
        expect(sessionCookies(refused), evil).toEqual([]);
        expect(refused.status, evil).toBe(403);
        expect(refused.body).toBe('cross-site request refused');
      }
      // Next lets a post without Origin through, and compares hosts only: our own check refuses
      // both a missing Origin/Referer and the right host under another scheme.
      for (const odd of [null, `https://${hostX}:${port}`]) {
        const refused = await replay(odd);
        expect(sessionCookies(refused), String(odd)).toEqual([]);
        expect(refused.body, String(odd)).toContain('cross-site request refused');
      }
      const same = await replay(origin);
      expect(sessionCookies(same)).toHaveLength(1);
      expect(sessionCookies(same)[0]).toMatch(/Path=\/;/);
    } finally {
      await page.close();
    }
  }, 60_000);

  it("lets the owner set, refuse and clear the host in the console's settings, audited, and serves the change", async () => {
    const page = await browser.newPage();
    page.setDefaultTimeout(20_000);
    try {
      await page
        .context()
        .addCookies([
          { name: 'tg_session', value: await createSessionToken(SESSION_SECRET, ownerId), url: app.base, httpOnly: true, sameSite: 'Lax' },
        ]);
      await page.goto(`${app.base}/t/${x.tenant.slug}/settings`);
      const field = page.getByLabel('Developer portal host');
      expect(await field.inputValue()).toBe(hostX);
      const save = page.getByRole('button', { name: 'Save settings' });
      const tryValue = async (value: string, expected: string) => {
        await field.fill(value);
        await save.click();
        await expect.poll(() => page.locator('form').filter({ has: field }).textContent(), { timeout: 15_000 }).toContain(expected);
      };
      await tryValue(hostY, 'already used by another workspace');
      await tryValue('https://developers.example.com/x', 'must be a host name');
      await tryValue('127.0.0.1', 'not an IP address');
      await tryValue('portal.localhost', 'must not be localhost');
      const moved = `docs.${x.tenant.slug}.test`;
      await tryValue(moved.toUpperCase(), 'Settings saved.');
      expect((await db.tenant.findUniqueOrThrow({ where: { id: x.tenant.id } })).portalHost).toBe(moved);
      const audit = await db.auditLog.findFirst({
        where: { tenantId: x.tenant.id, action: 'tenant.updated' },
        orderBy: { createdAt: 'desc' },
      });
      expect(audit?.data).toMatchObject({ portalHost: moved });
      await waitFor(async () => (await call('/', { host: moved })).body.includes(`${x.tenant.name} APIs`), {
        timeoutMs: 15_000,
        what: 'the new host',
      });
      await waitFor(async () => !(await call('/', { host: hostX })).body.includes(`${x.tenant.name} APIs`), {
        timeoutMs: 15_000,
        what: 'the old host to stop',
      });
      await field.fill('  ');
      await save.click();
      await expect
        .poll(async () => (await db.tenant.findUniqueOrThrow({ where: { id: x.tenant.id } })).portalHost, { timeout: 15_000 })
        .toBeNull();
      await waitFor(async () => !(await call('/', { host: moved })).body.includes(`${x.tenant.name} APIs`), {
        timeoutMs: 15_000,
        what: 'the cleared host to stop',
      });
    } finally {
      await page.close();
    }
  }, 120_000);
});
