// `tollgate export | diff | apply` against the console's real admin API over HTTP: a round trip
// through an empty workspace gives back the same file, diffs say what would change, a dry run
// changes nothing, and bad files, tokens and addresses end in one clear line and an exit code.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId, type Db } from '@tollgate/db';
import { testDb } from '../harness/db';
import { makeTenant, makeToken, publicResolver, type TestTenant } from '../console/fixtures';
import { createApi } from '../../apps/console/src/server/console/apis';
import { createPlan } from '../../apps/console/src/server/console/plans';
import { updateTenant } from '../../apps/console/src/server/console/tenant';
import { runCli } from '../../apps/cli/src/cli';
import { startAdminServer, type AdminServer } from './admin-server';

let db: Db;
let server: AdminServer;
let dir: string;
let source: TestTenant;
let sourceToken: string;

async function cli(args: string[], env: Record<string, string | undefined> = {}) {
  let out = '';
  let err = '';
  const code = await runCli(args, {
    stdout: (s) => (out += s),
    stderr: (s) => (err += s),
    env: { TOLLGATE_URL: server.url, ...env },
    cwd: dir,
  });
  return { code, out, err };
}

const file = (name: string) => path.join(dir, name);

/** A workspace using every kind of setting the file carries. */
async function populate(t: TestTenant) {
  const opts = { resolve: publicResolver };
  await updateTenant(t.owner, { requireDeveloperApproval: true });
  await createApi(
    t.owner,
    {
      name: 'Weather',
      slug: 'weather',
      description: 'Forecasts, by city',
      basePath: '/weather',
      visibility: 'PUBLIC',
      loadBalancing: 'WEIGHTED',
      retries: 2,
      targets: [
        { url: 'https://b.upstream.example.com/', weight: 3, healthCheckPath: '/healthz' },
        { url: 'https://a.upstream.example.com', weight: 1 },
        { url: 'https://sandbox.upstream.example.com', weight: 1, sandbox: true },
      ],
      openapi: { openapi: '3.1.0', info: { title: 'Weather', version: '1.0.0' }, paths: {} },
      // Edge policies (ADR 0025) round-trip like everything else.
      cors: { origins: ['https://weather.example.com'], headers: ['Content-Type'], credentials: true },
      ipRules: { deny: ['2001:db8:bad::/48'] },
      perIpRateLimit: { limit: 20, windowSeconds: 1, algorithm: 'gcra' },
      circuitBreaker: { failureRatio: 0.5, minRequests: 20, windowSeconds: 30, openSeconds: 10, halfOpenProbes: 2 },
      routes: [
        {
          name: 'Forecast',
          path: '/forecast/:city',
          methods: ['GET', 'HEAD'],
          cacheTtlSeconds: 60,
          rateLimit: { limit: 5, windowSeconds: 1 },
          requiredScopes: ['forecast:read'],
          sharedRateLimit: { limit: 500, windowSeconds: 1 },
        },
        {
          name: 'Ingest',
          path: '/ingest',
          methods: ['POST'],
          requestTimeoutMs: 5000,
          transform: {
            requestHeaders: { set: { authorization: 'Bearer upstream-secret-123', 'x-source': 'tollgate' }, remove: ['cookie'] },
            responseHeaders: { remove: ['server'] },
          },
        },
        { name: 'Everything else', path: '/*' },
      ],
    },
    opts,
  );
  await createApi(
    t.owner,
    {
      name: 'Accounts',
      slug: 'accounts',
      basePath: '/accounts',
      authMode: 'JWT',
      jwtConfig: {
        issuer: 'https://id.example.com/',
        audience: 'accounts',
        jwksUrl: 'https://id.example.com/.well-known/jwks.json',
        forwardClaims: ['sub'],
      },
      targets: [{ url: 'https://accounts.upstream.example.com' }],
    },
    opts,
  );
  const all = await db.api.findMany({ where: { tenantId: t.tenantId }, select: { id: true, slug: true } });
  const id = (slug: string) => all.find((a) => a.slug === slug)!.id;
  await createPlan(t.owner, {
    name: 'Free',
    slug: 'free',
    rateLimit: 10,
    rateWindowSeconds: 1,
    monthlyQuota: 1000,
    apiIds: [id('weather')],
    ipRules: { allow: ['10.0.0.0/8'] },
  });
  await createPlan(t.owner, {
    name: 'Pro',
    slug: 'pro',
    rateLimit: 100,
    rateAlgorithm: 'GCRA',
    monthlyQuota: 100_000,
    quotaMode: 'OVERAGE',
    flatFeeMinor: 2900,
    overageUnitPriceMinor: 1,
    tiers: [
      { upTo: 10_000, unitPriceMinor: 2 },
      { upTo: null, unitPriceMinor: 1 },
    ],
    trialDays: 14,
    apiIds: [id('weather'), id('accounts')],
  });
}

beforeAll(async () => {
  db = testDb();
  server = await startAdminServer(db);
  dir = mkdtempSync(path.join(tmpdir(), 'tg-cli-'));
  source = await makeTenant(db);
  await populate(source);
  sourceToken = await makeToken(source, 'VIEWER');
});
afterAll(async () => {
  await server?.close();
  await db.$disconnect();
});

describe('tollgate export → apply → export', () => {
  it('gives back the same file from a workspace built only by apply, and a second apply changes nothing', async () => {
    const exported = await cli(['export', '-o', 'source.yaml'], { TOLLGATE_TOKEN: sourceToken });
    expect(exported.code, exported.err).toBe(0);
    const text = readFileSync(file('source.yaml'), 'utf8');
    expect(text.split('\n')[0]).toMatch(/^# yaml-language-server: \$schema=\S+tollgate\.schema\.json$/);
    // No secrets in the file: the upstream credential became an environment reference.
    expect(text).not.toContain('upstream-secret-123');
    expect(text).toContain('${env:TOLLGATE_SECRET_WEATHER_POST_INGEST_AUTHORIZATION}');
    expect(exported.err).toContain('set TOLLGATE_SECRET_WEATHER_POST_INGEST_AUTHORIZATION before apply');
    // No ids unless asked, and references by slug.
    expect(text).not.toMatch(/\b(api|pln|rte)_[0-9a-z]{26}\b/);
    expect(text).toMatch(/apis:\n\s+- accounts\n\s+- weather/);

    const target = await makeTenant(db);
    const env = {
      TOLLGATE_TOKEN: await makeToken(target, 'ADMIN'),
      TOLLGATE_SECRET_WEATHER_POST_INGEST_AUTHORIZATION: 'Bearer upstream-secret-123',
    };
    const applied = await cli(['apply', 'source.yaml'], env);
    expect(applied.code, applied.err).toBe(0);
    expect(applied.out).toContain('+ api weather');
    expect(applied.out).toContain('+ plan pro');
    expect(applied.out).toMatch(/Applied 5 changes to workspace/);

    const again = await cli(['export', '-o', 'target.yaml'], env);
    expect(again.code, again.err).toBe(0);
    expect(readFileSync(file('target.yaml'), 'utf8')).toBe(text);
    // A sandbox target (test keys only) stays one through export and apply.
    expect(text).toContain('sandbox: true');
    // So do the edge policies.
    expect(text).toContain('- forecast:read');
    expect(text).toMatch(/circuitBreaker:\n\s+failureRatio: 0.5/);
    const weather = await db.api.findFirstOrThrow({ where: { tenantId: target.tenantId, slug: 'weather' } });
    expect(weather.cors).toMatchObject({ origins: ['https://weather.example.com'], credentials: true });
    expect(weather.ipRules).toEqual({ allow: [], deny: ['2001:db8:bad::/48'] });
    const sandboxes = await db.upstreamTarget.findMany({ where: { api: { tenantId: target.tenantId }, sandbox: true } });
    expect(sandboxes.map((t) => t.url)).toEqual(['https://sandbox.upstream.example.com']);
    // The secret reached the target as the value, not as the reference.
    const ingest = await db.route.findFirstOrThrow({ where: { api: { tenantId: target.tenantId }, path: '/ingest' } });
    expect(ingest.transform).toMatchObject({ requestHeaders: { set: { authorization: 'Bearer upstream-secret-123' } } });

    const diff = await cli(['diff', 'source.yaml'], env);
    expect(diff.code).toBe(0);
    expect(diff.out).toContain('No changes');
    const twice = await cli(['apply', 'source.yaml'], env);
    expect(twice.code).toBe(0);
    expect(twice.out).toContain('No changes');
  });
});

describe('tollgate diff and apply --dry-run', () => {
  let target: TestTenant;
  let env: Record<string, string>;
  let before: string;

  beforeAll(async () => {
    target = await makeTenant(db);
    env = { TOLLGATE_TOKEN: await makeToken(target, 'ADMIN'), TOLLGATE_SECRET_WEATHER_POST_INGEST_AUTHORIZATION: 'Bearer s3' };
    expect((await cli(['export', '-o', 'diff-source.yaml'], { TOLLGATE_TOKEN: sourceToken })).code).toBe(0);
    expect((await cli(['apply', 'diff-source.yaml'], env)).code).toBe(0);
    expect((await cli(['export', '-o', 'diff-before.yaml'], env)).code).toBe(0);
    before = readFileSync(file('diff-before.yaml'), 'utf8');
  });

  /** The exported file with some edits: a plan's limit, a new route, an API dropped, a setting. */
  function edited(): string {
    let text = before;
    text = text.replace('requireDeveloperApproval: true', 'requireDeveloperApproval: false');
    text = text.replace(/(slug: free\n(?:.*\n)*?\s+rateLimit:) 10\n/, '$1 25\n');
    text = text.replace(
      '    routes:\n      - name: Everything else',
      '    routes:\n      - name: Alerts\n        methods: [GET]\n        path: /alerts\n      - name: Everything else',
    );
    // Drop the accounts API (the first in the list) and its mention in the pro plan.
    text = text.replace(/ {2}- slug: accounts\n(?: {4}.*\n| {6}.*\n| {8}.*\n)*/, '');
    text = text.replace(/\n\s+- accounts\n/, '\n');
    return text;
  }

  it('lists each change with the old and new value, and exits 2', async () => {
    writeFileSync(file('edited.yaml'), edited());
    const res = await cli(['diff', 'edited.yaml'], env);
    expect(res.err).toBe('');
    expect(res.code).toBe(2);
    expect(res.out).toContain('~ settings\n    requireDeveloperApproval: true → false');
    expect(res.out).toContain('~ plan free\n    rateLimit: 10 → 25');
    expect(res.out).toContain('~ plan pro\n    apis: ["accounts","weather"] → ["weather"]');
    expect(res.out).toContain('+ route GET /alerts of api weather');
    // Without --prune what the file dropped is kept, and said so.
    expect(res.out).toContain('api accounts: in the workspace, not in the file; kept (--prune removes it)');
    expect(res.out).toContain('1 to create, 3 to update, 0 to delete.');
    const pruned = await cli(['diff', 'edited.yaml', '--prune'], env);
    expect(pruned.out).toContain('- api accounts');
  });

  it('--dry-run prints the same plan and changes nothing', async () => {
    const requestsBefore = server.requests.length;
    const res = await cli(['apply', 'edited.yaml', '--dry-run', '--prune'], env);
    expect(res.code).toBe(2);
    expect(res.out).toContain('- api accounts');
    // Only reads went to the console.
    expect(server.requests.slice(requestsBefore).every((r) => r.startsWith('GET '))).toBe(true);
    expect((await cli(['export', '-o', 'after-dry-run.yaml'], env)).code).toBe(0);
    expect(readFileSync(file('after-dry-run.yaml'), 'utf8')).toBe(before);
  });

  it('apply --prune makes the workspace match the edited file, which then diffs clean', async () => {
    const res = await cli(['apply', 'edited.yaml', '--prune'], env);
    expect(res.code, res.err).toBe(0);
    expect(res.out).toContain('- api accounts');
    expect(res.out).toContain('Applied 5 changes');
    expect(await db.api.count({ where: { tenantId: target.tenantId, slug: 'accounts' } })).toBe(0);
    expect((await db.tenant.findUniqueOrThrow({ where: { id: target.tenantId } })).requireDeveloperApproval).toBe(false);
    const clean = await cli(['diff', 'edited.yaml', '--prune'], env);
    expect(clean.code).toBe(0);
    expect(clean.out).toContain('No changes');
  });

  it('archives a pruned plan that has subscribers instead of deleting it', async () => {
    const pro = await db.plan.findFirstOrThrow({ where: { tenantId: target.tenantId, slug: 'pro' } });
    const consumer = await db.consumer.create({
      data: { id: newId('consumer'), tenantId: target.tenantId, email: 'sub@example.com', name: 'Sub' },
    });
    await db.subscription.create({
      data: {
        id: newId('subscription'),
        tenantId: target.tenantId,
        consumerId: consumer.id,
        planId: pro.id,
        currentPeriodStart: new Date(),
        currentPeriodEnd: new Date(Date.now() + 30 * 86_400_000),
      },
    });
    writeFileSync(file('no-pro.yaml'), edited().replace(/ {2}- slug: pro\n(?: {4}.*\n| {6}.*\n| {8}.*\n)*/, ''));
    const res = await cli(['apply', 'no-pro.yaml', '--prune'], env);
    expect(res.code, res.err).toBe(0);
    expect(res.out).toContain('- plan pro (archived instead if it has subscribers)');
    expect((await db.plan.findUniqueOrThrow({ where: { id: pro.id } })).status).toBe('ARCHIVED');
    // Bringing it back under the same slug is refused with a way out, not a 409 from the console.
    const back = await cli(['diff', 'edited.yaml'], env);
    expect(back.code).toBe(1);
    expect(back.err).toMatch(/^tollgate: plans\[1\]: plan pro is archived in this workspace; restore it in the console/);
  });
});

describe('bad files are refused before anything is sent', () => {
  const minimal = (extra = '') =>
    `version: 1\napis:\n  - slug: echo\n    name: Echo\n    basePath: /echo\n    targets:\n      - url: https://echo.example.com\n${extra}`;
  const cases: Array<[string, string, RegExp]> = [
    ['YAML syntax', 'version: 1\napis: [\n', /^tollgate: bad\.yaml:\d+: /],
    ['an empty file', '', /bad\.yaml is empty: expected a mapping that starts with "version: 1"/],
    ['a list at the top', '- version: 1\n', /bad\.yaml:1: expected a mapping/],
    ['a duplicate key', 'version: 1\nversion: 1\n', /bad\.yaml:2: Map keys must be unique/],
    ['an unknown field (a typo)', minimal('    retires: 3\n'), /bad\.yaml:3: apis\[0\]: unknown field "retires"/],
    [
      'a wrong type',
      minimal().replace('basePath: /echo', 'basePath: 42'),
      /bad\.yaml:5: apis\[0\]\.basePath: Invalid input: expected string/,
    ],
    ['a wrong version', 'version: 2\n', /bad\.yaml:1: version: Invalid input: expected 1/],
    ['a JavaScript tag', 'version: 1\napis: !!js/function "function () { return process.exit(9) }"\n', /bad\.yaml:2: /],
    [
      'an unknown API in a plan',
      `${minimal()}plans:\n  - slug: free\n    name: Free\n    apis: [nope]\n`,
      /plans\[0\]\.apis\[0\]: names API nope, which is not in apis/,
    ],
    [
      'two APIs with one slug',
      `${minimal()}${minimal().replace('version: 1\napis:\n', '')}`,
      /apis\[1\]: slug echo is already used by apis\[0\]/,
    ],
    [
      'an unset secret',
      minimal('    jwt:\n      key: ${env:TOLLGATE_TEST_UNSET}\n'),
      /the environment variable TOLLGATE_TEST_UNSET is not set/,
    ],
    [
      'an alias bomb',
      `version: 1\na: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n`,
      /bad\.yaml: Excessive alias count/,
    ],
    ['a huge file', `version: 1\n# ${'x'.repeat(6 * 1024 * 1024)}\n`, /bad\.yaml is larger than 5242880 bytes/],
  ];

  for (const [what, text, message] of cases) {
    it(`refuses ${what} with a line naming the place, exit 65, and no request`, async () => {
      writeFileSync(file('bad.yaml'), text);
      const requestsBefore = server.requests.length;
      const res = await cli(['apply', 'bad.yaml'], { TOLLGATE_TOKEN: sourceToken });
      expect(res.code, res.err).toBe(65);
      expect(res.err).toMatch(message);
      expect(res.err).not.toMatch(/\n\s+at |Error:|ZodError/);
      expect(res.out).toBe('');
      expect(server.requests.length).toBe(requestsBefore);
    });
  }

  it('validates offline: `tollgate validate` needs neither token nor console', async () => {
    writeFileSync(file('ok.yaml'), minimal());
    const res = await cli(['validate', 'ok.yaml'], { TOLLGATE_URL: undefined });
    expect(res).toMatchObject({ code: 0, out: 'ok.yaml: valid (1 APIs, 0 plans)\n' });
    expect((await cli(['validate', 'missing.yaml'])).code).toBe(74);
  });
});

describe('wrong token, unreachable console, bad command line', () => {
  it('says the token was refused (exit 77) and what to do', async () => {
    const res = await cli(['export'], { TOLLGATE_TOKEN: `tgat_${'A'.repeat(40)}` });
    expect(res.code).toBe(77);
    expect(res.err).toBe(
      'tollgate: the console refused the token: the access token is invalid, expired or revoked (set TOLLGATE_TOKEN to an admin API token, tgat_…)\n',
    );
  });

  it('says the console is unreachable (exit 69), or that the address is not the admin API', async () => {
    const closed = await startAdminServer(db);
    await closed.close();
    const down = await cli(['export'], { TOLLGATE_TOKEN: sourceToken, TOLLGATE_URL: closed.url });
    expect(down.code).toBe(69);
    expect(down.err).toBe(`tollgate: cannot reach the console at ${closed.url}: connection refused\n`);
    const elsewhere = await cli(['export', '--url', `${server.url}/docs`], { TOLLGATE_TOKEN: sourceToken });
    expect(elsewhere.code).toBe(69);
    expect(elsewhere.err).toMatch(
      /did not answer like the Tollgate admin API \(GET \/settings: HTTP 404, text\/html\); is --url the console's address\?/,
    );
  });

  it('refuses a change the token may not make (exit 77) before touching anything else', async () => {
    const target = await makeTenant(db);
    writeFileSync(
      file('private.yaml'),
      'version: 1\nsettings:\n  allowPrivateTargets: true\napis:\n  - slug: echo\n    name: Echo\n    basePath: /echo\n    targets:\n      - url: http://10.0.0.5:8080\n',
    );
    const res = await cli(['apply', 'private.yaml'], { TOLLGATE_TOKEN: await makeToken(target, 'ADMIN') });
    expect(res.code).toBe(77);
    expect(res.err).toBe(
      'tollgate: apply stopped at "~ settings": the console answered 403 forbidden: changing allowPrivateTargets needs the owner role; you are admin [request ' +
        res.err.match(/\[request (\S+)\]/)![1] +
        ']\ntollgate: run `tollgate diff` to see what is left\n',
    );
    expect(await db.api.count({ where: { tenantId: target.tenantId } })).toBe(0);
    const viewer = await cli(['apply', 'diff-source.yaml'], {
      TOLLGATE_TOKEN: await makeToken(target, 'VIEWER'),
      TOLLGATE_SECRET_WEATHER_POST_INGEST_AUTHORIZATION: 'x',
    });
    expect(viewer.code).toBe(77);
    expect(viewer.err).toMatch(/needs the admin role or higher; you are viewer/);
  });

  it('reports what the console refused mid-way (exit 1), keeping what was applied', async () => {
    const target = await makeTenant(db);
    writeFileSync(
      file('ssrf.yaml'),
      'version: 1\napis:\n  - slug: good\n    name: Good\n    basePath: /good\n    targets:\n      - url: https://good.example.com\n  - slug: internal\n    name: Internal\n    basePath: /internal\n    targets:\n      - url: http://169.254.169.254\n',
    );
    const res = await cli(['apply', 'ssrf.yaml'], { TOLLGATE_TOKEN: await makeToken(target, 'ADMIN') });
    expect(res.code).toBe(1);
    expect(res.out).toContain('+ api good');
    expect(res.err).toMatch(
      /^tollgate: apply stopped at "\+ api internal \(\/internal, 1 route\)": the console answered 422 unprocessable: upstream target points at a cloud metadata service \(targets\.0\.url: points at a cloud metadata service\)/,
    );
    expect(res.err).toContain('1 change was applied before it; run `tollgate diff` to see what is left');
  });

  it('explains a bad command line (exit 64)', async () => {
    expect((await cli(['frobnicate'], { TOLLGATE_TOKEN: sourceToken })).err).toMatch(/unknown command "frobnicate"/);
    expect((await cli(['apply'], { TOLLGATE_TOKEN: sourceToken })).code).toBe(64);
    expect((await cli(['export', '--bogus'], { TOLLGATE_TOKEN: sourceToken })).code).toBe(64);
    expect((await cli(['export'], { TOLLGATE_TOKEN: 'hunter2' })).err).toMatch(/does not look like an admin API token/);
    expect((await cli(['export'], { TOLLGATE_TOKEN: sourceToken, TOLLGATE_URL: undefined })).err).toMatch(/no console address/);
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toContain('Exit codes: 0 done');
  });
});
