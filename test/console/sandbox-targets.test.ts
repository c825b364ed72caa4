// An API may name sandbox targets for test keys (ADR 0017): set through the API service (console
// and admin API), published in the snapshot, and refused when it is not a boolean.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileTenantPolicy, type Db } from '@tollgate/db';
import { testDb } from '../harness/db';
import { apiInput, makeTenant, publicResolver, type TestTenant } from './fixtures';
import * as apis from '../../apps/console/src/server/console/apis';

const opts = { resolve: publicResolver };
let db: Db;
let t: TestTenant;

beforeAll(async () => {
  db = testDb();
  t = await makeTenant(db);
});
afterAll(async () => {
  await db.$disconnect();
});

describe('sandbox targets', () => {
  it('are stored and published as sandbox; live targets stay live; a non-boolean is refused', async () => {
    const targets = [
      { url: 'https://api.example.com', weight: 1 },
      { url: 'https://sandbox.example.com', weight: 1, sandbox: true },
    ];
    const api = await apis.createApi(t.owner, apiInput({ targets }), opts);
    const stored = await db.upstreamTarget.findMany({ where: { apiId: api.id }, orderBy: { url: 'asc' } });
    expect(stored.map((s) => [s.url, s.sandbox])).toEqual([
      ['https://api.example.com', false],
      ['https://sandbox.example.com', true],
    ]);
    const snap = await compileTenantPolicy(db, t.tenantId);
    const published = snap!.apis.find((a) => a.id === api.id)!.targets;
    expect(published.find((x) => x.url.startsWith('https://sandbox'))!.sandbox).toBe(true);
    expect(published.find((x) => x.url.startsWith('https://api'))!.sandbox).toBeUndefined();
    await expect(
      apis.updateApi(t.owner, api.id, { targets: [{ url: 'https://x.example.com', weight: 1, sandbox: 'yes' }] }, opts),
    ).rejects.toThrow();
  });
});
