import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { Db } from '@tollgate/db';
import { hashApiKey } from '@tollgate/keys';
import { testDb } from '../harness/db';
import { apiInput, call, makeTenant, makeToken, planInput, publicResolver, type TestTenant } from './fixtures';
import { createV1Handlers } from '../../apps/console/src/server/console/api/v1';
import { getMetrics } from '../../apps/console/src/server/shared/metrics';
import { validateOpenApi } from '../../apps/console/src/server/console/openapi';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let db: Db;
let t: TestTenant;
let token: string;
let v1: ReturnType<typeof createV1Handlers>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a JSON body of any shape, asserted field by field
let doc: any;
const ajv = new Ajv2020({ strict: false, allErrors: true });
(addFormats as unknown as (a: Ajv2020) => void)(ajv);

/** Checks a handler's response against the schema the document declares for that operation and status. */
function conforms(p: string, method: string, res: { status: number; body: unknown }) {
  const op = doc.paths[p]?.[method.toLowerCase()];
  expect(op, `${method} ${p} is documented`).toBeTruthy();
  const declared = op.responses[String(res.status)];
  expect(declared, `${method} ${p} documents status ${res.status}`).toBeTruthy();
  const schema = declared.content['application/json'].schema;
  const validate = ajv.compile({ ...schema, components: doc.components });
  const ok = validate(JSON.parse(JSON.stringify(res.body)));
  expect(ok, `${method} ${p} ${res.status}: ${JSON.stringify(validate.errors)?.slice(0, 500)}`).toBe(true);
}

beforeAll(async () => {
  db = testDb();
  t = await makeTenant(db);
  token = await makeToken(t, 'ADMIN');
  v1 = createV1Handlers(() => ({ db, log: { error: () => undefined, warn: () => undefined }, metrics: getMetrics() }), {
    resolve: publicResolver,
  });
  const res = await v1.openapi(new Request('http://console.test/api/v1/openapi.json'));
  doc = await res.json();
});
afterAll(async () => {
  await db.$disconnect();
});

describe('the OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document whose request schemas compile', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(validateOpenApi(doc).ok).toBe(true);
    const api = ajv.compile({ $ref: '#/components/schemas/Api', components: doc.components });
    expect(api({ id: 1 })).toBe(false);
    const key = ajv.compile({ $ref: '#/components/schemas/Key', components: doc.components });
    expect(key({ id: 'key_x', consumerId: 'c', prefix: 'p', env: 'live', status: 'ACTIVE', hash: 'leak' })).toBe(false);
    for (const [name, schema] of Object.entries(doc.components.schemas)) {
      expect(() => ajv.compile({ ...(schema as object), components: doc.components }), name).not.toThrow();
    }
  });

  it('documents exactly the route handlers that exist', () => {
    const base = path.join(root, 'apps/console/src/app/(console)/api/v1');
    const found: string[] = [];
    const walk = (dir: string, rel: string) => {
      for (const name of readdirSync(dir)) {
        const full = path.join(dir, name);
        if (statSync(full).isDirectory()) walk(full, `${rel}/${name.replace(/^\[(\w+)\]$/, '{$1}')}`);
        else if (name === 'route.ts' && !rel.includes('[...') && rel !== '/openapi.json') {
          const methods = [...readFileSync(full, 'utf8').matchAll(/export const (GET|POST|PATCH|PUT|DELETE)\b/g)].map((m) =>
            m[1]!.toLowerCase(),
          );
          for (const m of methods) found.push(`${m} ${rel}`);
        }
      }
    };
    walk(base, '');
    const documented = Object.entries(doc.paths).flatMap(([p, item]) =>
      Object.keys(item as object)
        .filter((k) => k !== 'parameters')
        .map((m) => `${m} ${p}`),
    );
    expect(found.sort()).toEqual(documented.sort());
  });
});

describe('admin API request ids (the platform scheme: X-Request-Id, a ULID)', () => {
  const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
  it('keeps a caller ULID and replaces anything else, in the header and the error body', async () => {
    const theirs = '01JF8Z6Q9W3N4R5T6V7X8Y9Z0A';
    const kept = await call(v1.apis.GET, { token, headers: { 'x-request-id': theirs } });
    expect(kept.headers.get('x-request-id')).toBe(theirs);
    for (const hostile of ['req_0f0f0f0f0f0f0f0f0f0f', 'x'.repeat(5000), 'abc\u0007def-ghijkl', theirs.toLowerCase(), '../../etc']) {
      const res = await call(v1.apis.GET, { token: 'tgat_wrong', headers: { 'x-request-id': hostile } });
      expect(res.status).toBe(401);
      const id = res.headers.get('x-request-id')!;
      expect(id, hostile.slice(0, 20)).toMatch(ULID);
      expect(res.body.error.requestId).toBe(id);
    }
  });
});

describe('admin API happy paths conform to the document', () => {
  it('creates, reads, lists, updates and deletes an API and its routes', async () => {
    const created = await call(v1.apis.POST, { method: 'POST', token, body: apiInput({ description: 'Weather data' }) });
    expect(created.status).toBe(201);
    conforms('/apis', 'POST', created);
    const id = created.body.id as string;
    expect(created.headers.get('x-request-id')).toBeTruthy();
    // The gateway forwards only matched paths, so a new API starts with one catch-all route.
    expect(created.body.routes).toMatchObject([{ path: '/*', methods: [] }]);
    const explicit = await call(v1.apis.POST, {
      method: 'POST',
      token,
      body: apiInput({ routes: [{ path: '/v1/items/:id', methods: ['GET'] }] }),
    });
    expect(explicit.body.routes).toMatchObject([{ path: '/v1/items/:id', methods: ['GET'] }]);

    const got = await call(v1.api.GET, { token, params: { id } });
    conforms('/apis/{id}', 'GET', got);
    const listed = await call(v1.apis.GET, { token });
    conforms('/apis', 'GET', listed);
    expect(listed.body.data.map((a: { id: string }) => a.id)).toContain(id);

    const patched = await call(v1.api.PATCH, { method: 'PATCH', token, params: { id }, body: { visibility: 'PUBLIC', retries: 2 } });
    conforms('/apis/{id}', 'PATCH', patched);
    expect(patched.body).toMatchObject({ visibility: 'PUBLIC', retries: 2 });

    const route = await call(v1.apiRoutes.POST, {
      method: 'POST',
      token,
      params: { id },
      body: { path: '/forecast/:city', methods: ['GET'], rateLimit: { limit: 5, windowSeconds: 1 } },
    });
    expect(route.status).toBe(201);
    conforms('/apis/{id}/routes', 'POST', route);
    conforms('/apis/{id}/routes', 'GET', await call(v1.apiRoutes.GET, { token, params: { id } }));
    const rid = route.body.id as string;
    conforms('/routes/{id}', 'GET', await call(v1.route.GET, { token, params: { id: rid } }));
    conforms(
      '/routes/{id}',
      'PATCH',
      await call(v1.route.PATCH, { method: 'PATCH', token, params: { id: rid }, body: { rateLimit: null } }),
    );
    conforms('/routes/{id}', 'DELETE', await call(v1.route.DELETE, { method: 'DELETE', token, params: { id: rid } }));

    const del = await call(v1.api.DELETE, { method: 'DELETE', token, params: { id } });
    conforms('/apis/{id}', 'DELETE', del);
    const gone = await call(v1.api.GET, { token, params: { id } });
    expect(gone.status).toBe(404);
    conforms('/apis/{id}', 'GET', gone);
  });

  it('writes an audit row for every change and a policy outbox row in the same transaction', async () => {
    const before = await db.outboxEvent.count({ where: { tenantId: t.tenantId, kind: 'policy' } });
    const created = await call(v1.apis.POST, { method: 'POST', token, body: apiInput() });
    const audit = await db.auditLog.findFirst({ where: { tenantId: t.tenantId, targetId: created.body.id } });
    expect(audit).toMatchObject({ action: 'api.created', actorType: 'token' });
    expect(await db.outboxEvent.count({ where: { tenantId: t.tenantId, kind: 'policy' } })).toBe(before + 1);
    const tenant = await db.tenant.findUniqueOrThrow({ where: { id: t.tenantId } });
    expect(tenant.policyVersion).toBeGreaterThan(0);
  });

  it('manages plans, archiving instead of deleting when the plan has subscribers', async () => {
    const api = await call(v1.apis.POST, { method: 'POST', token, body: apiInput() });
    const plan = await call(v1.plans.POST, {
      method: 'POST',
      token,
      body: planInput({
        apiIds: [api.body.id],
        flatFeeMinor: 1999,
        quotaMode: 'OVERAGE',
        overageUnitPriceMinor: 1,
        tiers: [
          { upTo: 1000, unitPriceMinor: 2 },
          { upTo: null, unitPriceMinor: 1 },
        ],
      }),
    });
    expect(plan.status).toBe(201);
    conforms('/plans', 'POST', plan);
    expect(plan.body).toMatchObject({ apiIds: [api.body.id], flatFeeMinor: 1999, currency: 'usd' });
    conforms('/plans', 'GET', await call(v1.plans.GET, { token }));
    conforms(
      '/plans/{id}',
      'PATCH',
      await call(v1.plan.PATCH, { method: 'PATCH', token, params: { id: plan.body.id }, body: { trialDays: 14 } }),
    );
    const key = await call(v1.keys.POST, { method: 'POST', token, body: { planId: plan.body.id } });
    expect(key.status).toBe(201);
    const del = await call(v1.plan.DELETE, { method: 'DELETE', token, params: { id: plan.body.id } });
    conforms('/plans/{id}', 'DELETE', del);
    expect(del.body).toMatchObject({ deleted: false, archived: true });
    expect((await call(v1.plan.GET, { token, params: { id: plan.body.id } })).body.status).toBe('ARCHIVED');

    const lonely = await call(v1.plans.POST, { method: 'POST', token, body: planInput() });
    expect((await call(v1.plan.DELETE, { method: 'DELETE', token, params: { id: lonely.body.id } })).body).toMatchObject({ deleted: true });
  });

  it('issues a key whose secret appears once and is stored only as a hash; rolls with grace and revokes', async () => {
    const consumer = await call(v1.consumers.POST, {
      method: 'POST',
      token,
      body: { email: `dev-${Date.now()}@example.com`, name: 'Dev' },
    });
    expect(consumer.status).toBe(201);
    conforms('/consumers', 'POST', consumer);
    const issued = await call(v1.keys.POST, {
      method: 'POST',
      token,
      body: { consumerId: consumer.body.id, name: 'ci', rateLimitOverride: 50, rateWindowOverride: 1 },
    });
    conforms('/keys', 'POST', issued);
    const secret = issued.body.secret as string;
    expect(secret).toMatch(/^tg_live_/);
    const row = await db.apiKey.findUniqueOrThrow({ where: { id: issued.body.key.id } });
    expect(row.hash).toBe(hashApiKey(secret));
    expect(JSON.stringify(row)).not.toContain(secret);
    const read = await call(v1.key.GET, { token, params: { id: row.id } });
    conforms('/keys/{id}', 'GET', read);
    expect(JSON.stringify(read.body)).not.toContain(secret);
    expect(read.body.hash).toBeUndefined();
    expect(await db.outboxEvent.count({ where: { kind: 'key', payload: { path: ['keyId'], equals: row.id } } })).toBe(1);

    const patched = await call(v1.key.PATCH, {
      method: 'PATCH',
      token,
      params: { id: row.id },
      body: { quotaOverride: 500, expiresAt: new Date(Date.now() + 86_400_000).toISOString() },
    });
    conforms('/keys/{id}', 'PATCH', patched);
    const rolled = await call(v1.keyRoll.POST, { method: 'POST', token, params: { id: row.id }, body: { graceSeconds: 3600 } });
    expect(rolled.status).toBe(201);
    conforms('/keys/{id}/roll', 'POST', rolled);
    expect(rolled.body.secret).not.toBe(secret);
    expect(rolled.body.key).toMatchObject({ rolledFromId: row.id, quotaOverride: 500, rateLimitOverride: 50 });
    const graceEnd = new Date(rolled.body.previous.expiresAt).getTime();
    expect(graceEnd).toBeLessThanOrEqual(Date.now() + 3600_000 + 1000);
    expect(rolled.body.previous.status).toBe('ACTIVE');

    const revoked = await call(v1.key.DELETE, { method: 'DELETE', token, params: { id: rolled.body.key.id } });
    conforms('/keys/{id}', 'DELETE', revoked);
    expect(revoked.body.status).toBe('REVOKED');
    conforms('/keys', 'GET', await call(v1.keys.GET, { token, query: 'status=REVOKED' }));
    conforms('/consumers/{id}', 'GET', await call(v1.consumer.GET, { token, params: { id: consumer.body.id } }));
    conforms('/consumers', 'GET', await call(v1.consumers.GET, { token }));
    conforms(
      '/consumers/{id}',
      'PATCH',
      await call(v1.consumer.PATCH, { method: 'PATCH', token, params: { id: consumer.body.id }, body: { status: 'SUSPENDED' } }),
    );
    const cannot = await call(v1.consumer.DELETE, { method: 'DELETE', token, params: { id: consumer.body.id } });
    expect(cannot.status).toBe(409);
    conforms('/consumers/{id}', 'DELETE', cannot);
  });

  it('pages through lists with a cursor, newest first, without repeats', async () => {
    const fresh = await makeTenant(db);
    const tk = await makeToken(fresh, 'ADMIN');
    for (let i = 0; i < 5; i++)
      await call(v1.consumers.POST, { method: 'POST', token: tk, body: { email: `p${i}@example.com`, name: `P${i}` } });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a JSON body of any shape, asserted field by field
      const res: { status: number; body: any } = await call(v1.consumers.GET, {
        token: tk,
        query: `limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      });
      expect(res.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.data.map((c: { email: string }) => c.email));
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(['p4@example.com', 'p3@example.com', 'p2@example.com', 'p1@example.com', 'p0@example.com']);
  });

  it('answers usage queries in the documented shape', async () => {
    const res = await call(v1.usage.GET, { token, query: 'range=7d' });
    expect(res.status).toBe(200);
    conforms('/usage', 'GET', res);
    expect(res.body.granularity).toBe('hour');
  });

  it('counts admin API requests by method and status for Prometheus', async () => {
    await call(v1.apis.GET, {});
    const text = await getMetrics().registry.metrics();
    expect(text).toMatch(/tg_console_admin_api_requests_total\{method="GET",status="401",service="console"\} [1-9]/);
    expect(text).toMatch(/tg_console_admin_api_requests_total\{method="POST",status="201",service="console"\} [1-9]/);
    expect(text).toContain('tg_console_admin_api_duration_seconds_bucket');
  });
});
