import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import type { Db } from '@tollgate/db';
import type { Keyspace } from '@tollgate/policy';
import { testDb } from '../harness/db';
import { testKeyspace, testRedis } from '../harness/index';
import { uniq } from './fixtures';
import { ServiceError } from '../../apps/console/src/server/shared/context';
import { logInUser, signUpTenant } from '../../apps/console/src/server/console/accounts';
import { acceptInvitation, inviteMember, listMembers } from '../../apps/console/src/server/console/members';

let db: Db;
let redis: Redis;
let keyspace: Keyspace;
const deps = () => ({ db, redis, keyspace });
let ipSeq = 0;
const ip = () => `203.0.113.${++ipSeq}`;

function signup(over: Record<string, unknown> = {}) {
  const slug = uniq('acme');
  return {
    name: 'Ada Owner',
    email: `${slug}@example.com`,
    password: 'correct horse battery',
    tenantName: 'Acme',
    tenantSlug: slug,
    ...over,
  };
}

async function code(p: Promise<unknown>): Promise<string | null> {
  return p.then(
    () => null,
    (e: unknown) => (e instanceof ServiceError ? e.code : `unexpected: ${String(e)}`),
  );
}

beforeAll(async () => {
  db = testDb();
  redis = testRedis();
  keyspace = testKeyspace('acct');
});
afterAll(async () => {
  await redis.quit();
  await db.$disconnect();
});

describe('signup', () => {
  it('creates the tenant, its owner with a scrypt hash, and an audit row, in one go', async () => {
    const input = signup();
    const out = await signUpTenant(deps(), input, { ip: ip() });
    expect(out.tenantSlug).toBe(input.tenantSlug);
    const user = await db.user.findUniqueOrThrow({ where: { email: input.email } });
    expect(user.passwordHash).toMatch(/^scrypt\$/);
    expect(user.passwordHash).not.toContain(input.password);
    const m = await db.membership.findFirstOrThrow({ where: { userId: user.id }, include: { tenant: true } });
    expect(m).toMatchObject({ role: 'OWNER', tenant: { slug: input.tenantSlug, allowPrivateTargets: false } });
    expect(await db.auditLog.count({ where: { tenantId: m.tenantId, action: 'tenant.created' } })).toBe(1);
  });

  it('answers 409 for a taken workspace address or e-mail and leaves no half-made tenant', async () => {
    const first = signup();
    await signUpTenant(deps(), first, { ip: ip() });
    const dupSlug = signup({ tenantSlug: first.tenantSlug });
    const dupEmail = signup({ email: first.email.toUpperCase() });
    expect(await code(signUpTenant(deps(), dupSlug, { ip: ip() }))).toBe('conflict');
    expect(await code(signUpTenant(deps(), dupEmail, { ip: ip() }))).toBe('conflict');
    // Neither the second user nor the second tenant was left behind.
    expect(await db.user.count({ where: { email: dupSlug.email } })).toBe(0);
    expect(await db.tenant.count({ where: { slug: dupEmail.tenantSlug } })).toBe(0);
  });

  it('refuses hostile signups with 422 and stores nothing', async () => {
    const attempts = [
      signup({ name: '<script>alert(1)</script>' }),
      signup({ tenantName: '<img src=x onerror=alert(1)>' }),
      signup({ email: 'not-an-email' }),
      signup({ password: 'short' }),
      signup({ password: 'x'.repeat(5000) }),
      signup({ tenantSlug: 'Has Spaces' }),
      signup({ tenantSlug: 'api' }),
      signup({ name: 'x'.repeat(1000) }),
      signup({ email: ['a@b.example'] }),
    ];
    for (const bad of attempts) {
      expect(await code(signUpTenant(deps(), bad, { ip: ip() }))).toBe('unprocessable');
    }
    const slugs = attempts.map((a) => a.tenantSlug).filter((s): s is string => typeof s === 'string');
    expect(await db.tenant.count({ where: { slug: { in: slugs } } })).toBe(0);
  });

  it('rate-limits signups per client address', async () => {
    const addr = ip();
    const results: Array<string | null> = [];
    for (let i = 0; i < 12; i++) results.push(await code(signUpTenant(deps(), signup({ password: 'short' }), { ip: addr })));
    expect(results.slice(0, 10).every((r) => r === 'unprocessable')).toBe(true);
    expect(results.slice(10)).toEqual(['rate_limited', 'rate_limited']);
  });
});

describe('login', () => {
  it('accepts the right password, refuses a wrong one and an unknown e-mail with the same message', async () => {
    const input = signup();
    await signUpTenant(deps(), input, { ip: ip() });
    const ok = await logInUser(deps(), { email: input.email.toUpperCase(), password: input.password }, { ip: ip() });
    expect(ok.tenantSlug).toBe(input.tenantSlug);
    const wrong = await logInUser(deps(), { email: input.email, password: 'wrong password!' }, { ip: ip() }).catch((e: ServiceError) => e);
    const unknown = await logInUser(deps(), { email: `nobody-${input.email}`, password: 'whatever123' }, { ip: ip() }).catch(
      (e: ServiceError) => e,
    );
    expect(wrong).toBeInstanceOf(ServiceError);
    expect((wrong as ServiceError).code).toBe('unauthorized');
    expect((unknown as ServiceError).message).toBe((wrong as ServiceError).message);
  });

  it('locks an e-mail out after 10 failed attempts in the window, even from many addresses', async () => {
    const input = signup();
    await signUpTenant(deps(), input, { ip: ip() });
    const codes: Array<string | null> = [];
    for (let i = 0; i < 11; i++)
      codes.push(await code(logInUser(deps(), { email: input.email, password: `wrong-${i}-password` }, { ip: ip() })));
    expect(codes.slice(0, 10).every((c) => c === 'unauthorized')).toBe(true);
    expect(codes[10]).toBe('rate_limited');
    // Even the right password waits out the window: the limiter runs before the check.
    expect(await code(logInUser(deps(), { email: input.email, password: input.password }, { ip: ip() }))).toBe('rate_limited');
  });

  it('refuses oversized or wrongly typed credentials with 422', async () => {
    expect(await code(logInUser(deps(), { email: 'a@b.example', password: 'x'.repeat(10_000) }, { ip: ip() }))).toBe('unprocessable');
    expect(await code(logInUser(deps(), { email: { $ne: null }, password: 'x' }, { ip: ip() }))).toBe('unprocessable');
  });
});

describe('invitations', () => {
  it('lets an invited person create an account and join with the invited role, once', async () => {
    const owner = signup();
    await signUpTenant(deps(), owner, { ip: ip() });
    const user = await db.user.findUniqueOrThrow({ where: { email: owner.email }, include: { memberships: true } });
    const ctx = { db, tenantId: user.memberships[0]!.tenantId, role: 'OWNER' as const, actor: { type: 'user' as const, id: user.id } };
    const email = `${uniq('dev')}@example.com`;
    const inv = await inviteMember(ctx, { email, role: 'DEVELOPER' }, 'http://console.test');
    expect(await db.emailMessage.count({ where: { to: email } })).toBe(1);
    const token = inv.link.split('/invite/')[1]!;
    expect(await code(acceptInvitation(db, { token }, null))).toBe('unprocessable');
    const joined = await acceptInvitation(db, { token, name: 'Dev', password: 'a long password' }, null);
    expect(joined.tenantSlug).toBe(owner.tenantSlug);
    const { members } = await listMembers(ctx);
    expect(members.find((m) => m.user.email === email)?.role).toBe('DEVELOPER');
    expect(await code(acceptInvitation(db, { token, name: 'Again', password: 'a long password' }, null))).toBe('not_found');
    expect(await code(acceptInvitation(db, { token: 'inv_forged', name: 'X', password: 'a long password' }, null))).toBe('not_found');
  });
});
