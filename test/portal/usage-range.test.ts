import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId, type Db } from '@tollgate/db';
import { testDb } from '../harness/db';
import { makePortalTenant, portalDeps, uniq } from './fixtures';
import * as portal from '../../apps/console/src/server/portal/index';
import { ServiceError } from '../../apps/console/src/server/shared/context';
import type { PortalDeps } from '../../apps/console/src/server/portal/context';

// The portal usage page's own date range: whole UTC days, from ≤ to, at most 90 days, never in
// the future; anything else is a clear 422, and the numbers are still only the developer's.

const SECRET = 'usage-range-test-secret-at-least-32-chars';
const DAY = 86_400_000;
let db: Db;
let deps: PortalDeps;
beforeAll(() => {
  db = testDb();
  deps = portalDeps(db);
});
afterAll(async () => {
  deps.redis.disconnect();
  await db.$disconnect();
});

const ymd = (d: Date) => d.toISOString().slice(0, 10);
const today = () => new Date(Math.floor(Date.now() / DAY) * DAY);
const daysAgo = (n: number) => new Date(today().getTime() - n * DAY);

async function failure(p: Promise<unknown> | (() => unknown)): Promise<ServiceError> {
  const err = await Promise.resolve()
    .then(() => (typeof p === 'function' ? p() : p))
    .then(
      () => null,
      (e: unknown) => e,
    );
  expect(err).toBeInstanceOf(ServiceError);
  return err as ServiceError;
}

describe('customWindow', () => {
  const now = new Date('2026-11-28T05:30:00Z');
  it('spans whole UTC days, one day included, and stops at now', () => {
    expect(portal.customWindow({ from: '2026-11-01', to: '2026-11-03' }, now)).toEqual({
      from: new Date('2026-11-01T00:00:00Z'),
      to: new Date('2026-11-04T00:00:00Z'),
    });
    expect(portal.customWindow({ from: '2026-11-28', to: '2026-11-28' }, now)).toEqual({ from: new Date('2026-11-28T00:00:00Z'), to: now });
    expect(portal.customWindow({ from: '2026-08-31', to: '2026-11-28' }, now)?.from).toEqual(new Date('2026-08-31T00:00:00Z'));
    expect(portal.customWindow({}, now)).toBeNull();
  });

  it('refuses reversed, too long, future and half-given ranges, naming the field', async () => {
    const cases: Array<[Record<string, string>, string, RegExp]> = [
      [{ from: '2026-11-10', to: '2026-11-09' }, 'from', /on or before/],
      [{ from: '2026-08-30', to: '2026-11-28' }, 'to', /at most 90 days \(this one is 91\)/],
      [{ from: '2026-11-29', to: '2026-11-30' }, 'from', /future/],
      [{ from: '2026-11-01' }, 'to', /both "from" and "to"/],
      [{ to: '2026-11-01' }, 'from', /both "from" and "to"/],
    ];
    for (const [q, field, message] of cases) {
      const err = await failure(() => portal.customWindow(q, now));
      expect(err.code, JSON.stringify(q)).toBe('unprocessable');
      expect(err.message, JSON.stringify(q)).toMatch(message);
      expect(err.fields?.[field], JSON.stringify(q)).toBeTruthy();
    }
  });
});

describe("a developer's usage over a custom range", () => {
  it("counts only the days asked for, only the developer's own calls", async () => {
    const x = await makePortalTenant(db);
    const sign = async (name: string) => {
      const s = await portal.signUpDeveloper(
        deps,
        x.tenant,
        { name, email: `${uniq(name)}@example.com`, password: 'correct horse battery' },
        { ip: '10.1.2.3' },
      );
      const token = await portal.createPortalToken(SECRET, x.tenant.id, s.consumerId, portal.passwordVersion(s.passwordHash));
      return (await portal.resolveDeveloper(db, SECRET, x.tenant, token))!;
    };
    const a = await sign('ann');
    const b = await sign('bob');
    const keyA = newId('key');
    const keyB = newId('key');
    // As the worker's compaction leaves them: an hour row and, for the closed day, its day row.
    const row = (granularity: 'hour' | 'day', keyId: string, consumerId: string, at: Date, requests: number, errors = 0) => ({
      tenantId: x.tenant.id,
      granularity,
      bucketStart: at,
      apiId: x.apiId,
      keyId,
      consumerId,
      requests: BigInt(requests),
      status2xx: BigInt(requests - errors),
      status5xx: BigInt(errors),
      latencyBuckets: [0n, BigInt(requests)],
      latencySumMs: BigInt(requests),
    });
    const noon = (n: number) => new Date(daysAgo(n).getTime() + 12 * 3_600_000);
    const both = (keyId: string, consumerId: string, n: number, requests: number, errors = 0) => [
      row('hour', keyId, consumerId, noon(n), requests, errors),
      row('day', keyId, consumerId, daysAgo(n), requests, errors),
    ];
    await db.usageRollup.createMany({
      data: [...both(keyA, a.consumerId, 10, 10, 2), ...both(keyA, a.consumerId, 40, 40), ...both(keyB, b.consumerId, 10, 1000)],
    });
    const around10 = { from: ymd(daysAgo(12)), to: ymd(daysAgo(8)) };
    const u = await portal.myUsage(a, around10);
    expect(u.totals.requests).toBe(10);
    expect(u.totals.s5xx).toBe(2);
    expect(u.points.reduce((s, p) => s + p.requests, 0)).toBe(10);
    expect((await portal.myUsage(a, { from: ymd(daysAgo(45)), to: ymd(daysAgo(5)) })).totals.requests).toBe(50);
    expect((await portal.myUsage(a, { from: ymd(daysAgo(10)), to: ymd(daysAgo(10)) })).totals.requests).toBe(10);
    expect((await portal.myUsage(a, { from: ymd(daysAgo(9)), to: ymd(today()) })).totals.requests).toBe(0);
    expect(await portal.myKeyUsage(a, around10)).toEqual([expect.objectContaining({ id: keyA, requests: 10, errors: 2 })]);
    expect((await portal.myUsage(b, around10)).totals.requests).toBe(1000);

    // Hostile values: each a 422 naming the field, never a crash.
    const hostile: unknown[] = [
      { from: 'yesterday', to: ymd(today()) },
      { from: '2026-02-30', to: '2026-03-01' },
      { from: '2026-1-1', to: '2026-01-02' },
      { from: "2026-01-01' OR 1=1 --", to: '2026-01-02' },
      { from: ['2026-01-01', '2026-01-02'], to: '2026-01-02' },
      { from: 20260101, to: '2026-01-02' },
      { from: `${'9'.repeat(5000)}-01-01`, to: '2026-01-02' },
      { from: '+275760-09-13', to: '2026-01-02' },
      { from: ymd(daysAgo(200)), to: ymd(daysAgo(1)) },
      { from: ymd(daysAgo(1)), to: ymd(daysAgo(3)) },
      { from: ymd(daysAgo(1)) },
      { from: ymd(daysAgo(3)), to: ymd(daysAgo(1)), range: 'forever' },
      { from: ymd(daysAgo(3)), to: ymd(daysAgo(1)), consumerId: b.consumerId },
    ];
    for (const q of hostile) {
      const err = await failure(portal.myUsage(a, q));
      expect(err.code, JSON.stringify(q).slice(0, 80)).toBe('unprocessable');
      expect(err.message.length).toBeLessThan(300);
    }
  });
});
