import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '@tollgate/db';
import { testDb } from '../harness/db';
import { testEnv, uniquePrefix } from '../harness/index';
import { ensureConsoleBuild, startConsole, type Child } from '../e2e/platform';
import { makeTenant, makeToken } from '../console/fixtures';

// Forwarded-for spoofing against the console: a client that writes its own X-Forwarded-For or
// X-Real-IP (or the console's internal client-address header) must neither escape the signup and
// login limits nor put an address of its choice into the audit log. Without TRUST_PROXY only the
// socket counts; behind trusted proxies, the right-most entry that isn't one of them.
// Against the production build and the console's own server (dist/main.js), over HTTP.

const SESSION_SECRET = 'forwarded-for-test-session-secret-0123456789';
let db: Db;
let direct: Child & { base: string }; // TRUST_PROXY=false
let proxied: Child & { base: string }; // TRUST_PROXY=true, CONSOLE_TRUSTED_PROXIES=127.0.0.1,::1

const spoof = (i: number) => ({
  'x-forwarded-for': `203.0.113.${i % 250}, 198.51.100.${i % 250}`,
  'x-real-ip': `6.6.6.${i % 250}`,
  'x-tollgate-client-ip': `192.0.2.${i % 250}`,
});

beforeAll(async () => {
  await ensureConsoleBuild();
  db = testDb();
  const env = testEnv();
  const common = { DATABASE_URL: env.databaseUrl, REDIS_URL: env.redisUrl, SESSION_SECRET };
  [direct, proxied] = await Promise.all([
    startConsole({ ...common, REDIS_PREFIX: uniquePrefix('xff-direct') }),
    startConsole({ ...common, REDIS_PREFIX: uniquePrefix('xff-proxied'), TRUST_PROXY: 'true', CONSOLE_TRUSTED_PROXIES: '127.0.0.1, ::1' }),
  ]);
}, 600_000);

afterAll(async () => {
  await Promise.all([direct?.stop(), proxied?.stop()]);
  await db?.$disconnect();
});

const decode = (s: string) =>
  s
    .replace(/&quot;/g, '"')
    .replace(/&#x27;|&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');

/**
 * Submits a page's form the way a browser without JavaScript does: a multipart POST of the
 * form's hidden server-action fields plus `fields`, to the page's own URL.
 */
async function postForm(base: string, page: string, fields: Record<string, string>, headers: Record<string, string> = {}) {
  const html = await (await fetch(`${base}${page}`)).text();
  const form = /<form\b[^>]*>([\s\S]*?)<\/form>/.exec(html)?.[1] ?? '';
  const body = new FormData();
  for (const m of form.matchAll(/<input\b([^>]*?)\/?>/g)) {
    const attrs = Object.fromEntries([...m[1]!.matchAll(/([\w$:-]+)="([^"]*)"/g)].map((a) => [a[1]!, decode(a[2]!)]));
    if (attrs.type === 'hidden' && attrs.name) body.append(attrs.name, attrs.value ?? '');
  }
  expect(
    [...body.keys()].some((k) => k.startsWith('$ACTION')),
    `${page} has a server-action form`,
  ).toBe(true);
  for (const [k, v] of Object.entries(fields)) body.set(k, v);
  const res = await fetch(`${base}${page}`, { method: 'POST', body, headers: { origin: base, ...headers }, redirect: 'manual' });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), text: await res.text() };
}

const signupFields = (slug: string) => ({
  name: 'Spoof Tester',
  email: `${slug}@example.com`,
  password: 'correct horse battery staple',
  tenantName: `Tenant ${slug}`,
  tenantSlug: slug,
});
const newSlug = () => `xff-${randomBytes(4).toString('hex')}`;

async function signupAuditIp(slug: string): Promise<string | null | undefined> {
  const tenant = await db.tenant.findUnique({ where: { slug } });
  if (!tenant) return undefined;
  const row = await db.auditLog.findFirst({ where: { tenantId: tenant.id, action: 'tenant.created' } });
  return row?.ip;
}

describe('forwarded-for spoofing, TRUST_PROXY=false', () => {
  it('stores the socket address in the audit row, whatever the client claims', async () => {
    const slug = newSlug();
    const res = await postForm(direct.base, '/signup', signupFields(slug), spoof(1));
    expect(res.status).toBe(303);
    expect(await signupAuditIp(slug)).toBe('127.0.0.1');
  });

  it('limits signups with a rotating X-Forwarded-For: 429 with Retry-After, and the page says why', async () => {
    // 10 an hour per address: one was used above; these fail validation but count all the same.
    const statuses: number[] = [];
    for (let i = 2; i <= 10; i++) statuses.push((await postForm(direct.base, '/signup', { tenantSlug: '' }, spoof(i))).status);
    expect(statuses.every((s) => s === 200)).toBe(true);
    const refused = await postForm(direct.base, '/signup', signupFields(newSlug()), spoof(11));
    expect(refused.status).toBe(429);
    expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(refused.text).toContain('too many attempts');
  }, 60_000);

  it('limits logins with a rotating X-Forwarded-For and rotating e-mails', async () => {
    // 50 per 15 minutes per address; each attempt names another e-mail, so only the address limit applies.
    const statuses: number[] = [];
    for (let i = 0; i < 51; i++) {
      const r = await postForm(
        direct.base,
        '/login',
        { email: `nobody-${i}-${randomBytes(3).toString('hex')}@example.com`, password: 'x' },
        spoof(i),
      );
      statuses.push(r.status);
      if (r.status === 429) {
        expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
        expect(r.text).toContain('too many attempts');
      }
    }
    expect(statuses.slice(0, 50).every((s) => s === 200)).toBe(true);
    expect(statuses[50]).toBe(429);
  }, 120_000);

  it("keeps a client-sent X-Real-IP out of the admin API's audit rows", async () => {
    const t = await makeTenant(db);
    const token = await makeToken(t);
    const res = await fetch(`${direct.base}/api/v1/settings`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...spoof(66) },
      body: JSON.stringify({ requireDeveloperApproval: true }),
    });
    expect(res.status).toBe(200);
    const row = await db.auditLog.findFirst({ where: { tenantId: t.tenantId, action: 'tenant.updated' } });
    expect(row?.ip).toBe('127.0.0.1');
  });

  it('records the socket address under hostile X-Forwarded-For values (garbage, 1,000 entries, IPv6, ports)', async () => {
    const t = await makeTenant(db);
    const token = await makeToken(t);
    const hostile = [
      'garbage, ;;;, %00, <script>',
      Array.from({ length: 1000 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.1`).join(', '),
      '2001:db8::1, [2001:db8::2]:443',
      '198.51.100.3:5555, unknown',
      ',,,',
    ];
    for (const [i, xff] of hostile.entries()) {
      const res = await fetch(`${direct.base}/api/v1/settings`, {
        method: 'PATCH',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'x-forwarded-for': xff,
          'x-real-ip': xff.slice(0, 100),
        },
        body: JSON.stringify({ requireDeveloperApproval: i % 2 === 0 }),
      });
      expect(res.status, xff.slice(0, 40)).toBe(200);
    }
    const rows = await db.auditLog.findMany({ where: { tenantId: t.tenantId, action: 'tenant.updated' } });
    expect(rows.length).toBe(hostile.length);
    expect(new Set(rows.map((r) => r.ip))).toEqual(new Set(['127.0.0.1']));
  });
});

describe('forwarded-for behind trusted proxies (TRUST_PROXY=true, CONSOLE_TRUSTED_PROXIES)', () => {
  // The test's socket is 127.0.0.1, one of the trusted proxies; each row is what the proxy chain
  // wrote and the address that must land in the audit row.
  const cases: Array<[string, string, string]> = [
    ['the right-most untrusted entry, not the client-written left ones', '6.6.6.6, 198.51.100.7, 127.0.0.1', '198.51.100.7'],
    ['an IPv6 client', '6.6.6.6, 2001:db8::7', '2001:db8::7'],
    ['an IPv4 entry with a port', '198.51.100.8:51234', '198.51.100.8'],
    ['a bracketed IPv6 entry with a port', '[2001:db8::9]:443, ::1', '2001:db8::9'],
    ['garbage where the client should be: the trusted hop that passed it on', '6.6.6.6, not-an-ip, 127.0.0.1', '127.0.0.1'],
    [
      '1,000 entries: only the right end is read',
      [...Array.from({ length: 999 }, (_, i) => `203.0.113.${i % 250}`), '198.51.100.10'].join(','),
      '198.51.100.10',
    ],
    ['only trusted hops: the nearest of them', '127.0.0.1, 127.0.0.1', '127.0.0.1'],
  ];

  for (const [name, xff, expected] of cases) {
    it(name, async () => {
      const slug = newSlug();
      const res = await postForm(proxied.base, '/signup', signupFields(slug), { 'x-forwarded-for': xff, 'x-real-ip': '6.6.6.6' });
      expect(res.status).toBe(303);
      expect(await signupAuditIp(slug)).toBe(expected);
    });
  }

  it('limits by the resolved address: rotating the client-written entries does not help', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) {
      const xff = `203.0.113.${i}, 198.51.100.77, 127.0.0.1`;
      statuses.push((await postForm(proxied.base, '/signup', { tenantSlug: '' }, { 'x-forwarded-for': xff })).status);
    }
    expect(statuses.slice(0, 10).every((s) => s === 200)).toBe(true);
    expect(statuses[10]).toBe(429);
    // Another client behind the same proxy still has its own budget.
    const other = await postForm(proxied.base, '/signup', { tenantSlug: '' }, { 'x-forwarded-for': '198.51.100.78' });
    expect(other.status).toBe(200);
  }, 60_000);
});
