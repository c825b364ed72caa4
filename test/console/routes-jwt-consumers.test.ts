import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileTenantPolicy, type Db } from '@tollgate/db';
import { testDb } from '../harness/db';
import { apiInput, call, failure, makeTenant, makeToken, publicResolver, uniq, type TestTenant } from './fixtures';
import { ServiceError } from '../../apps/console/src/server/shared/context';
import { createApi, getApi, updateApi } from '../../apps/console/src/server/console/apis';
import { createRoute, getRoute, updateRoute } from '../../apps/console/src/server/console/routes';
import { createConsumer, getConsumer } from '../../apps/console/src/server/console/consumers';
import { issueKey, listKeys } from '../../apps/console/src/server/console/keys';
import { queryUsage } from '../../apps/console/src/server/shared/usage';
import { formFieldsFor, jwtConfigFrom, routeInputFrom } from '../../apps/console/src/server/console/form-inputs';
import { createV1Handlers } from '../../apps/console/src/server/console/api/v1';

let db: Db;
let a: TestTenant;
let b: TestTenant;
let apiA: string;
let apiB: string;
const opts = { resolve: publicResolver };
// A public-looking DNS name that points inside the network.
const privateResolver = async (host: string) => (host === 'jwks.internal.example' ? ['10.0.0.7'] : ['93.184.216.34']);

function form(entries: Array<[string, string]>): FormData {
  const fd = new FormData();
  for (const [k, v] of entries) fd.append(k, v);
  return fd;
}

beforeAll(async () => {
  db = testDb();
  a = await makeTenant(db);
  b = await makeTenant(db);
  apiA = (await createApi(a.owner, apiInput(), opts)).id;
  apiB = (await createApi(b.owner, apiInput(), opts)).id;
});
afterAll(async () => {
  await db.$disconnect();
});

describe('route editing with header transforms', () => {
  it('stores methods, path, timeout, cache TTL and header transforms, and publishes them in the gateway snapshot', async () => {
    const fd = form([
      ['path', '/items/:id'],
      ['name', 'Items'],
      ['methods', 'GET'],
      ['methods', 'HEAD'],
      ['cacheTtlSeconds', '30'],
      ['requestTimeoutMs', '1500'],
      ['rateLimit', ''],
      ['requestSet', 'X-Upstream-Key: abc 123\nAccept-Language: en'],
      ['requestRemove', 'Cookie, X-Debug'],
      ['responseSet', 'Cache-Control: public, max-age=30'],
      ['responseRemove', 'Server\nX-Powered-By'],
    ]);
    const route = await createRoute(a.ctx('DEVELOPER'), apiA, routeInputFrom(fd));
    expect(route).toMatchObject({
      path: '/items/:id',
      methods: ['GET', 'HEAD'],
      cacheTtlSeconds: 30,
      requestTimeoutMs: 1500,
      rateLimit: null,
    });
    expect(route.transform).toEqual({
      requestHeaders: { set: { 'X-Upstream-Key': 'abc 123', 'Accept-Language': 'en' }, remove: ['Cookie', 'X-Debug'] },
      responseHeaders: { set: { 'Cache-Control': 'public, max-age=30' }, remove: ['Server', 'X-Powered-By'] },
    });

    const edited = await updateRoute(
      a.ctx('DEVELOPER'),
      route.id,
      routeInputFrom(
        form([
          ['path', '/items/:id/*'],
          ['methods', 'POST'],
          ['cacheTtlSeconds', '0'],
          ['requestTimeoutMs', ''],
          ['responseRemove', 'Server'],
        ]),
      ),
    );
    expect(edited).toMatchObject({
      path: '/items/:id/*',
      methods: ['POST'],
      cacheTtlSeconds: 0,
      requestTimeoutMs: null,
      transform: { responseHeaders: { remove: ['Server'] } },
    });
    const snap = await compileTenantPolicy(db, a.tenantId);
    const compiled = snap!.apis.find((x) => x.id === apiA)!.routes.find((r) => r.id === route.id)!;
    expect(compiled).toMatchObject({
      path: '/items/:id/*',
      methods: ['POST'],
      timeoutMs: null,
      transform: { responseHeaders: { remove: ['Server'] } },
    });

    const cleared = await updateRoute(a.ctx('DEVELOPER'), route.id, routeInputFrom(form([['path', '/items/:id/*']])));
    expect(cleared.transform).toBeNull();
    expect(await db.auditLog.count({ where: { tenantId: a.tenantId, targetId: route.id, action: 'route.updated' } })).toBe(2);
  });

  it('refuses header transforms that could smuggle headers or touch what the gateway owns, storing nothing', async () => {
    const route = await createRoute(a.owner, apiA, { path: `/${uniq('r')}` });
    const bad: Array<[unknown, string]> = [
      [{ requestHeaders: { set: { 'X-A': 'ok\r\nX-Injected: 1' } } }, 'line break in a value'],
      [{ requestHeaders: { set: { 'X-A\r\nEvil': '1' } } }, 'line break in a name'],
      [{ requestHeaders: { set: { 'Bad Name': '1' } } }, 'space in a name'],
      [{ requestHeaders: { set: { Host: 'internal.example' } } }, 'Host'],
      [{ requestHeaders: { set: { 'X-Tollgate-Consumer': 'con_admin' } } }, 'identity header'],
      [{ responseHeaders: { set: { 'Content-Length': '0' } } }, 'framing header'],
      [{ requestHeaders: { remove: ['Transfer-Encoding'] } }, 'hop-by-hop removal'],
      [{ requestHeaders: { remove: ['x-forwarded-for'] } }, 'forwarding header'],
      [{ requestHeaders: { set: { ['X-' + 'a'.repeat(70)]: '1' } } }, 'long name'],
      [{ requestHeaders: { set: { 'X-A': 'v'.repeat(1025) } } }, 'long value'],
      [{ requestHeaders: { set: Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`X-H${i}`, '1'])) } }, 'too many'],
      [{ requestHeaders: { set: { 'X-A': 1 } } }, 'number value'],
      [{ requestHeaders: { script: '<script>' } }, 'unknown key'],
      ['requestHeaders', 'not an object'],
    ];
    for (const [transform, why] of bad) {
      const err = await failure(updateRoute(a.owner, route.id, { transform }));
      expect(err.code, why).toBe('unprocessable');
    }
    expect((await getRoute(a.owner, route.id)).transform).toBeNull();
    const named = await failure(updateRoute(a.owner, route.id, { transform: { requestHeaders: { set: { Host: 'x' } } } }));
    expect(named.message).toContain('Host is set by the gateway');
  });

  it('names the form field of a malformed header line instead of crashing', () => {
    let err: unknown;
    try {
      routeInputFrom(
        form([
          ['path', '/x'],
          ['requestSet', 'no colon here'],
        ]),
      );
    } catch (e) {
      err = e;
    }
    expect((err as ServiceError).fields).toEqual({ requestSet: 'needs one Name: value per line' });
    expect(() =>
      routeInputFrom(
        form([
          ['path', '/x'],
          ['responseSet', 'X-A: 1\nX-A: 2'],
        ]),
      ),
    ).toThrow(/twice/);
    expect(() =>
      routeInputFrom(
        form([
          ['path', '/x'],
          ['requestSet', '__proto__: polluted'],
        ]),
      ),
    ).toThrow(ServiceError);
    expect(() =>
      routeInputFrom(
        form([
          ['path', '/x'],
          ['requestRemove', Array.from({ length: 60 }, (_, i) => `X-${i}`).join('\n')],
        ]),
      ),
    ).toThrow(/too many/);
    const mapped = formFieldsFor(
      new ServiceError('unprocessable', 'x', {
        'transform.requestHeaders.set.Host': 'is set by the gateway',
        'jwtConfig.jwksUrl': 'is private',
      }),
    ) as ServiceError;
    expect(mapped.fields).toEqual({ requestSet: 'is set by the gateway', jwtJwksUrl: 'is private' });
  });

  it('lets only developers and up edit routes, and answers 404 for another tenant’s route', async () => {
    const route = await createRoute(a.owner, apiA, { path: `/${uniq('r')}` });
    const err = await failure(updateRoute(a.ctx('VIEWER'), route.id, { cacheTtlSeconds: 60 }));
    expect(err.code).toBe('forbidden');
    const theirs = await createRoute(b.owner, apiB, { path: '/theirs' });
    expect((await failure(updateRoute(a.owner, theirs.id, { transform: null }))).code).toBe('not_found');
    const v1 = createV1Handlers(() => ({ db, log: { error: () => undefined, warn: () => undefined } }), opts);
    const token = await makeToken(a, 'ADMIN');
    const res = await call(v1.route.PATCH, {
      method: 'PATCH',
      token,
      params: { id: theirs.id },
      body: { transform: { requestHeaders: { set: { 'X-A': '1' } } } },
    });
    expect(res.status).toBe(404);
    const ok = await call(v1.route.PATCH, {
      method: 'PATCH',
      token,
      params: { id: route.id },
      body: { transform: { responseHeaders: { set: { 'X-Served-By': 'tollgate' } } } },
    });
    expect(ok.status).toBe(200);
    expect(ok.body.transform).toEqual({ responseHeaders: { set: { 'X-Served-By': 'tollgate' } } });
    expect((await getRoute(b.owner, theirs.id)).transform).toBeNull();
    expect((await getRoute(a.owner, route.id)).cacheTtlSeconds).toBe(0);
  });
});

describe('JWT settings on the API form', () => {
  const jwtForm = (audience = 'weather') =>
    form([
      ['jwtIssuer', 'https://auth.example.com/'],
      ['jwtAudience', audience],
      ['jwtJwksUrl', 'https://auth.example.com/.well-known/jwks.json'],
      ['jwtAlgorithms', 'RS256'],
      ['jwtAlgorithms', 'ES256'],
      ['jwtForwardClaims', 'sub, scope'],
    ]);

  it('saves issuer, audience, JWKS URL, algorithms and forwarded claims, keeps an existing key, and compiles them into the snapshot', async () => {
    const jwtConfig = jwtConfigFrom(jwtForm(), 'JWT');
    const api = await createApi(a.ctx('DEVELOPER'), apiInput({ authMode: 'JWT', jwtConfig }), opts);
    expect(api.jwtConfig).toEqual({
      issuer: 'https://auth.example.com/',
      audience: 'weather',
      jwksUrl: 'https://auth.example.com/.well-known/jwks.json',
      key: null,
      algorithms: ['RS256', 'ES256'],
      forwardClaims: ['sub', 'scope'],
      requireExp: true,
      maxLifetimeSeconds: 86_400,
    });
    const snap = await compileTenantPolicy(db, a.tenantId);
    expect(snap!.apis.find((x) => x.id === api.id)!).toMatchObject({
      authMode: 'jwt',
      jwt: {
        issuer: 'https://auth.example.com/',
        algorithms: ['RS256', 'ES256'],
        forwardClaims: ['sub', 'scope'],
        requireExp: true,
        maxLifetimeSeconds: 86_400,
      },
    });

    await updateApi(a.owner, api.id, { jwtConfig: { ...jwtConfig, key: 'shared-secret-set-over-the-api' } }, opts);
    const kept = jwtConfigFrom(jwtForm('weather-v2'), 'JWT', 'shared-secret-set-over-the-api');
    const saved = await updateApi(a.owner, api.id, { jwtConfig: kept }, opts);
    expect(saved.jwtConfig).toMatchObject({ audience: 'weather-v2', key: 'shared-secret-set-over-the-api' });

    // Switching back to API keys with the JWT fields emptied removes the settings.
    expect(jwtConfigFrom(form([]), 'API_KEY')).toBeNull();
    const off = await updateApi(a.owner, api.id, { authMode: 'API_KEY', jwtConfig: null }, opts);
    expect(off.jwtConfig).toBeNull();
  });

  it('refuses a JWKS URL on link-local, metadata or private addresses unless the tenant allows private targets', async () => {
    for (const url of [
      'http://169.254.169.254/latest/meta-data/',
      'http://127.0.0.1:8080/jwks',
      'http://[::1]/jwks',
      'http://10.1.2.3/jwks',
      'file:///etc/passwd',
    ]) {
      const err = await failure(createApi(a.owner, apiInput({ authMode: 'JWT', jwtConfig: { jwksUrl: url } }), opts));
      expect(err.code, url).toBe('unprocessable');
    }
    const dns = await failure(
      createApi(a.owner, apiInput({ authMode: 'JWT', jwtConfig: { jwksUrl: 'https://jwks.internal.example/keys' } }), {
        resolve: privateResolver,
      }),
    );
    expect(dns.fields).toHaveProperty(['jwtConfig.jwksUrl']);
    const existing = await createApi(a.owner, apiInput(), opts);
    const upd = await failure(updateApi(a.owner, existing.id, { jwtConfig: { jwksUrl: 'http://169.254.169.254/' } }, opts));
    expect(upd.fields).toHaveProperty(['jwtConfig.jwksUrl']);
    expect((await getApi(a.owner, existing.id)).jwtConfig).toBeNull();

    const open = await makeTenant(db, { allowPrivateTargets: true });
    const ok = await createApi(
      open.owner,
      apiInput({ targets: [{ url: 'http://10.0.0.5', weight: 1 }], authMode: 'JWT', jwtConfig: { jwksUrl: 'http://10.0.0.5/jwks' } }),
      opts,
    );
    expect((ok.jwtConfig as { jwksUrl: string }).jwksUrl).toBe('http://10.0.0.5/jwks');
    // Metadata stays refused even then.
    expect(
      (
        await failure(
          createApi(
            open.owner,
            apiInput({ targets: [{ url: 'http://10.0.0.5', weight: 1 }], jwtConfig: { jwksUrl: 'http://169.254.169.254/' } }),
            opts,
          ),
        )
      ).code,
    ).toBe('unprocessable');
  });

  it('rejects hostile JWT fields with 422 and stores nothing', async () => {
    const before = await db.api.count({ where: { tenantId: a.tenantId } });
    const bad = [
      { issuer: 'https://a\r\nX-Evil: 1' },
      { audience: 'x'.repeat(513) },
      { algorithms: ['none'] },
      { algorithms: 'RS256' },
      { forwardClaims: ['sub; rm -rf'] },
      { forwardClaims: Array.from({ length: 21 }, (_, i) => `c${i}`) },
      { jwksUrl: 'not a url' },
      { issuer: 42 },
    ];
    for (const jwtConfig of bad)
      expect(
        (await failure(createApi(a.owner, apiInput({ authMode: 'JWT', jwtConfig }), opts))).code,
        JSON.stringify(jwtConfig).slice(0, 60),
      ).toBe('unprocessable');
    expect(await db.api.count({ where: { tenantId: a.tenantId } })).toBe(before);
    expect(
      (await failure(createApi(a.ctx('VIEWER'), apiInput({ authMode: 'JWT', jwtConfig: jwtConfigFrom(jwtForm(), 'JWT') }), opts))).code,
    ).toBe('forbidden');
  });
});

describe('consumers created in the console and their detail data', () => {
  it('creates a consumer, issues it a key, and shows subscriptions, keys and usage scoped to the tenant', async () => {
    const c = await createConsumer(a.ctx('ADMIN'), { email: `${uniq('partner')}@example.com`, name: 'Partner Co' });
    expect(c).toMatchObject({ name: 'Partner Co', internal: false, status: 'ACTIVE' });
    const plan = await db.plan.create({
      data: { id: `pln_${'0'.repeat(20)}${Date.now().toString(36).slice(-6)}`, tenantId: a.tenantId, name: 'Gold', slug: uniq('gold') },
    });
    await issueKey(a.ctx('DEVELOPER'), { consumerId: c.id, planId: plan.id, name: 'prod' });
    const detail = await getConsumer(a.ctx('VIEWER'), c.id);
    expect(detail.subscriptions.map((s) => s.plan.name)).toEqual(['Gold']);
    const keys = await listKeys(a.ctx('VIEWER'), { consumerId: c.id });
    expect(keys.data).toHaveLength(1);
    expect(JSON.stringify(keys.data)).not.toMatch(/"hash"/);
    const usage = await queryUsage(a.ctx('VIEWER'), { range: '30d', consumerId: c.id });
    expect(usage.totals.requests).toBe(0);
    expect(await db.auditLog.count({ where: { tenantId: a.tenantId, targetId: c.id, action: 'consumer.created' } })).toBe(1);
  });

  it('keeps developers and viewers from adding consumers and refuses hostile or duplicate input', async () => {
    for (const role of ['DEVELOPER', 'VIEWER'] as const)
      expect((await failure(createConsumer(a.ctx(role), { email: `${uniq('x')}@example.com`, name: 'X' }))).code).toBe('forbidden');
    const email = `${uniq('dup')}@example.com`;
    await createConsumer(a.owner, { email, name: 'First' });
    expect((await failure(createConsumer(a.owner, { email, name: 'Second' }))).code).toBe('conflict');
    for (const input of [
      { email: 'nope', name: 'X' },
      { email: `${uniq('s')}@example.com`, name: '<script>alert(1)</script>' },
      { email: `${uniq('l')}@example.com`, name: 'n'.repeat(101) },
      { email: `${uniq('i')}@example.com`, name: 'X', internal: true },
      { email: ['a@b.co'], name: 'X' },
    ]) {
      expect((await failure(createConsumer(a.owner, input))).code, JSON.stringify(input).slice(0, 60)).toBe('unprocessable');
    }
    expect(await db.consumer.count({ where: { tenantId: a.tenantId, name: { in: ['Second', 'X'] } } })).toBe(0);
  });

  it("answers 404 for another tenant's consumer and shows none of its keys", async () => {
    const theirs = await createConsumer(b.owner, { email: `${uniq('b')}@example.com`, name: 'B only' });
    await issueKey(b.owner, { consumerId: theirs.id });
    expect((await failure(getConsumer(a.owner, theirs.id))).code).toBe('not_found');
    expect((await listKeys(a.owner, { consumerId: theirs.id })).data).toHaveLength(0);
    expect((await failure(getConsumer(a.owner, '../con_x'))).code).toBe('not_found');
  });
});
