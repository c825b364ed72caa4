import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { newId, type Db } from '@tollgate/db';
import { LATENCY_BUCKETS_MS } from '@tollgate/usage';
import { testDb } from '../harness/db';
import { testKeyspace, testRedis } from '../harness/index';
import { apiInput, makeTenant, publicResolver, uniq, type TestTenant } from './fixtures';
import { createApi } from '../../apps/console/src/server/console/apis';
import { createConsumer } from '../../apps/console/src/server/console/consumers';
import { issueKey } from '../../apps/console/src/server/console/keys';
import { csvCell } from '../../apps/console/src/server/console/usage-csv';
import { createSessionToken, readSessionToken, revokeSession, SESSION_COOKIE } from '../../apps/console/src/server/console/session';
import { createUsageExportHandler } from '../../apps/console/src/server/console/usage-export';

const SECRET = 'usage-export-test-secret-at-least-32-chars';
const MINUTE = 60_000;
let db: Db;
let redis: Redis;
let a: TestTenant;
let b: TestTenant;
let viewerId: string;
let outsiderId: string;
let handler: ReturnType<typeof createUsageExportHandler>;
let keyspace: ReturnType<typeof testKeyspace>;
const ids: Record<string, string> = {};

// Names a user could type that a spreadsheet would run as a formula.
const HOSTILE = {
  api: '=HYPERLINK("http://evil.example","click")',
  key: '@SUM(1+1)',
  consumer: "+cmd|' /C calc'!A0",
  consumer2: '-2+3, "quoted"',
};

async function rollup(
  t: TestTenant,
  at: Date,
  over: { apiId: string; keyId: string; consumerId?: string; requests: number; s5xx?: number },
) {
  const lat = new Array(LATENCY_BUCKETS_MS.length + 1).fill(0n);
  lat[3] = BigInt(over.requests);
  await db.usageRollup.create({
    data: {
      tenantId: t.tenantId,
      granularity: 'minute',
      bucketStart: at,
      apiId: over.apiId,
      keyId: over.keyId,
      consumerId: over.consumerId ?? '',
      requests: BigInt(over.requests),
      status2xx: BigInt(over.requests - (over.s5xx ?? 0)),
      status5xx: BigInt(over.s5xx ?? 0),
      latencyBuckets: lat,
    },
  });
}

async function get(opts: { slug?: string; userId?: string | null; query?: string; cookie?: string }) {
  const cookie =
    opts.cookie ?? (opts.userId ? `theme=dark; ${SESSION_COOKIE}=${await createSessionToken(SECRET, opts.userId)}` : undefined);
  const req = new Request(`http://console.test/t/${opts.slug ?? a.slug}/analytics/export${opts.query ? `?${opts.query}` : ''}`, {
    headers: cookie ? { cookie } : {},
  });
  const res = await handler(req, { params: Promise.resolve({ tenant: opts.slug ?? a.slug }) });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

beforeAll(async () => {
  db = testDb();
  redis = testRedis();
  keyspace = testKeyspace('csv');
  handler = createUsageExportHandler(() => ({ db, redis, keyspace, sessionSecret: SECRET, log: { error: () => undefined } }));
  a = await makeTenant(db);
  b = await makeTenant(db);
  viewerId = a.ctx('VIEWER').actor.id;
  outsiderId = b.owner.actor.id;
  const opts = { resolve: publicResolver };
  ids.api = (await createApi(a.owner, apiInput({ name: HOSTILE.api }), opts)).id;
  ids.api2 = (await createApi(a.owner, apiInput({ name: 'Plain API' }), opts)).id;
  const con = await createConsumer(a.owner, { email: `${uniq('c')}@example.com`, name: HOSTILE.consumer });
  const con2 = await createConsumer(a.owner, { email: `${uniq('d')}@example.com`, name: HOSTILE.consumer2 });
  ids.consumer = con.id;
  ids.key = (await issueKey(a.owner, { consumerId: con.id, name: HOSTILE.key })).key.id;
  ids.key2 = (await issueKey(a.owner, { consumerId: con2.id, name: 'second' })).key.id;
  const t = Math.floor((Date.now() - 10 * MINUTE) / MINUTE) * MINUTE;
  await rollup(a, new Date(t), { apiId: ids.api, keyId: ids.key, consumerId: con.id, requests: 40, s5xx: 4 });
  await rollup(a, new Date(t), { apiId: ids.api2, keyId: ids.key2, consumerId: con2.id, requests: 2 });
  // Tenant B's traffic must never reach A's export.
  await rollup(b, new Date(t), { apiId: newId('api'), keyId: newId('key'), requests: 987_654 });
});
afterAll(async () => {
  redis.disconnect();
  await db.$disconnect();
});

describe('CSV export route handler', () => {
  it('exports the time series of the signed-in member as an attachment, without another tenant’s traffic', async () => {
    const res = await get({ userId: viewerId, query: 'range=1h' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="usage-${a.slug}-1h.csv"`);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const lines = res.text.trim().split('\n');
    expect(lines[0]).toBe('bucket_start,requests,2xx,3xx,4xx,5xx,errors,p50_ms,p95_ms,p99_ms');
    const rows = lines.slice(1).map((l) => l.split(','));
    expect(rows.reduce((n, r) => n + Number(r[1]), 0)).toBe(42);
    expect(rows.reduce((n, r) => n + Number(r[5]), 0)).toBe(4);
    expect(res.text).not.toContain('987654');
  });

  it('applies the API, key, consumer and status filters', async () => {
    const sum = (text: string) =>
      text
        .trim()
        .split('\n')
        .slice(1)
        .reduce((n, l) => n + Number(l.split(',')[1]), 0);
    expect(sum((await get({ userId: viewerId, query: `range=1h&apiId=${ids.api2}` })).text)).toBe(2);
    expect(sum((await get({ userId: viewerId, query: `range=1h&keyId=${ids.key}` })).text)).toBe(40);
    expect(sum((await get({ userId: viewerId, query: `range=1h&consumerId=${ids.consumer}` })).text)).toBe(40);
    const errorsOnly = await get({ userId: viewerId, query: 'range=1h&status=5xx' });
    expect(errorsOnly.status).toBe(200);
    expect(sum(errorsOnly.text)).toBeLessThanOrEqual(42);
    // A filter value outside the known set is dropped, not passed to the query.
    expect((await get({ userId: viewerId, query: 'range=1h&tenantId=someone-else' })).status).toBe(200);
  });

  it('makes every user-chosen name in the top-lists export safe to open in a spreadsheet', async () => {
    const res = await get({ userId: viewerId, query: 'range=1h&kind=top' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toContain(`usage-${a.slug}-top-1h.csv`);
    const lines = res.text.trim().split('\n');
    expect(lines[0]).toBe('kind,id,name,requests,errors');
    expect(res.text).toContain(`api,${ids.api},"'=HYPERLINK(""http://evil.example"",""click"")",40,4`);
    expect(res.text).toContain(`"'@SUM(1+1) (`);
    expect(res.text).toContain(`"'+cmd|' /C calc'!A0 <`);
    expect(res.text).toContain(`"'-2+3, ""quoted"" <`);
    // No line has a cell that starts a formula.
    for (const line of lines) {
      for (const cell of line.match(/("([^"]|"")*"|[^,]*)/g)!.filter(Boolean)) expect(cell.replace(/^"/, '')).not.toMatch(/^[=+\-@\t\r]/);
    }
  });

  it('quotes and neutralises cells by the CSV rules', () => {
    expect(csvCell('=1+1')).toBe(`"'=1+1"`);
    expect(csvCell('+1')).toBe(`"'+1"`);
    expect(csvCell('-1')).toBe(`"'-1"`);
    expect(csvCell('@A1')).toBe(`"'@A1"`);
    expect(csvCell('\t=1')).toBe(`"'\t=1"`);
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('line\nbreak')).toBe('"line\nbreak"');
    expect(csvCell('plain')).toBe('plain');
    expect(csvCell(-3)).toBe('-3');
    expect(csvCell(null)).toBe('');
    expect(csvCell(Number.NaN)).toBe('');
  });

  it('answers 401 without a valid, unrevoked session', async () => {
    expect((await get({ userId: null })).status).toBe(401);
    expect((await get({ cookie: `${SESSION_COOKIE}=not-a-token` })).status).toBe(401);
    const forged = await createSessionToken('some-other-secret-that-is-32-chars-long', viewerId);
    expect((await get({ cookie: `${SESSION_COOKIE}=${forged}` })).status).toBe(401);
    const token = await createSessionToken(SECRET, viewerId);
    expect((await get({ cookie: `${SESSION_COOKIE}=${token}`, query: 'range=1h' })).status).toBe(200);
    await revokeSession({ redis, keyspace }, (await readSessionToken(SECRET, token))!);
    const res = await get({ cookie: `${SESSION_COOKIE}=${token}`, query: 'range=1h' });
    expect(res.status).toBe(401);
    expect(JSON.parse(res.text).error.code).toBe('unauthorized');
  });

  it("answers 404 for another tenant's workspace exactly like an unknown one", async () => {
    const cross = await get({ userId: outsiderId, slug: a.slug, query: 'range=1h' });
    const unknown = await get({ userId: outsiderId, slug: 'no-such-workspace-x' });
    const hostile = await get({ userId: outsiderId, slug: '../../etc/passwd' });
    expect([cross.status, unknown.status, hostile.status]).toEqual([404, 404, 404]);
    expect(JSON.parse(cross.text)).toEqual(JSON.parse(unknown.text));
    expect(cross.text).not.toContain('bucket_start');
  });

  it('rejects bad filters with a 422 naming the field, never a 500', async () => {
    for (const q of ['range=1y', 'apiId=../etc', 'status=6xx', 'kind=everything', 'from=not-a-date', `keyId=${'k'.repeat(5000)}`]) {
      const res = await get({ userId: viewerId, query: q });
      expect(res.status, q).toBe(422);
      expect(JSON.parse(res.text).error.code).toBe('unprocessable');
    }
  });
});
