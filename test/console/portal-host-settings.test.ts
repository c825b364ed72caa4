import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '@tollgate/db';
import { testDb } from '../harness/db';
import { failure, makeTenant, uniq } from './fixtures';
import { updateTenant } from '../../apps/console/src/server/console/tenant';

// The tenant setting behind a portal on its own host: who may set it, what it accepts, and that
// two workspaces can never claim one host.

let db: Db;
beforeAll(() => {
  db = testDb();
});
afterAll(async () => {
  await db.$disconnect();
});

describe('tenant portal host setting', () => {
  it('is set normalised, audited, cleared by null or an empty string, and only by an owner', async () => {
    const t = await makeTenant(db);
    const host = `Developers.${uniq('acme')}.Example.`;
    const saved = await updateTenant(t.owner, { portalHost: host });
    expect(saved.portalHost).toBe(host.toLowerCase().replace(/\.$/, ''));
    const audit = await db.auditLog.findFirstOrThrow({
      where: { tenantId: t.tenantId, action: 'tenant.updated' },
      orderBy: { createdAt: 'desc' },
    });
    expect(audit.data).toMatchObject({ portalHost: saved.portalHost });
    expect((await updateTenant(t.owner, { portalHost: '' })).portalHost).toBeNull();
    await updateTenant(t.owner, { portalHost: saved.portalHost });
    expect((await updateTenant(t.owner, { portalHost: null })).portalHost).toBeNull();
    // Leaving it out changes nothing.
    await updateTenant(t.owner, { portalHost: saved.portalHost });
    expect((await updateTenant(t.owner, { name: 'Renamed' })).portalHost).toBe(saved.portalHost);
    expect((await failure(updateTenant(t.ctx('ADMIN'), { portalHost: `x.${uniq('a')}.example` }))).code).toBe('forbidden');
  });

  it("refuses another workspace's host with a 409 naming the field, and the console's own host", async () => {
    const a = await makeTenant(db);
    const b = await makeTenant(db);
    const host = `portal.${uniq('shared')}.example`;
    await updateTenant(a.owner, { portalHost: host });
    const taken = await failure(updateTenant(b.owner, { portalHost: host.toUpperCase() }));
    expect(taken.code).toBe('conflict');
    expect(taken.fields).toEqual({ portalHost: 'is already used by another workspace' });
    expect((await db.tenant.findUniqueOrThrow({ where: { id: b.tenantId } })).portalHost).toBeNull();
    const reserved = await failure(
      updateTenant(b.owner, { portalHost: 'console.example.com' }, { reservedHosts: ['console.example.com'] }),
    );
    expect(reserved.code).toBe('unprocessable');
    expect(reserved.fields?.portalHost).toMatch(/console's own host/);
  });

  it('refuses malformed and hostile values with a 422 naming the field', async () => {
    const t = await makeTenant(db);
    for (const value of [
      'http://x.example',
      'x.example:443',
      '127.0.0.1',
      'localhost',
      'a.localhost',
      'a b.example',
      'x'.repeat(400),
      42,
      true,
      ['a.example'],
      { host: 'a.example' },
    ]) {
      const err = await failure(updateTenant(t.owner, { portalHost: value }));
      expect(err.code, JSON.stringify(value)).toBe('unprocessable');
      expect(err.fields?.portalHost, JSON.stringify(value)).toBeTruthy();
    }
    expect((await db.tenant.findUniqueOrThrow({ where: { id: t.tenantId } })).portalHost).toBeNull();
  });
});
