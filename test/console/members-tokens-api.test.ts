import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { Db } from '@tollgate/db';
import { hashApiKey } from '@tollgate/keys';
import { testDb } from '../harness/db';
import { call, makeTenant, makeToken, uniq, type TestTenant } from './fixtures';
import { createV1Handlers } from '../../apps/console/src/server/console/api/v1';
import { ServiceError } from '../../apps/console/src/server/shared/context';
import { changeMemberRole, removeMember } from '../../apps/console/src/server/console/members';

let db: Db;
let a: TestTenant;
let b: TestTenant;
let admin: string;
let developer: string;
let viewer: string;
let v1: ReturnType<typeof createV1Handlers>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a JSON body of any shape, asserted field by field
let doc: any;
const ajv = new Ajv2020({ strict: false, allErrors: true });
(addFormats as unknown as (x: Ajv2020) => void)(ajv);

function conforms(p: string, method: string, res: { status: number; body: unknown }) {
  const declared = doc.paths[p]?.[method.toLowerCase()]?.responses[String(res.status)];
  expect(declared, `${method} ${p} documents status ${res.status}`).toBeTruthy();
  const validate = ajv.compile({ ...declared.content['application/json'].schema, components: doc.components });
  expect(
    validate(JSON.parse(JSON.stringify(res.body))),
    `${method} ${p} ${res.status}: ${JSON.stringify(validate.errors)?.slice(0, 400)}`,
  ).toBe(true);
}

const membership = (t: TestTenant, role: string) =>
  db.membership.findFirstOrThrow({ where: { tenantId: t.tenantId, role: role as 'OWNER' } });

beforeAll(async () => {
  db = testDb();
  a = await makeTenant(db);
  b = await makeTenant(db);
  [admin, developer, viewer] = [await makeToken(a, 'ADMIN'), await makeToken(a, 'DEVELOPER'), await makeToken(a, 'VIEWER')];
  v1 = createV1Handlers(() => ({ db, log: { error: () => undefined, warn: () => undefined }, consoleUrl: 'https://console.example.com' }));
  doc = await (await v1.openapi(new Request('http://console.test/api/v1/openapi.json'))).json();
});
afterAll(async () => {
  await db.$disconnect();
});

describe('members in the admin API', () => {
  it('lists members and pending invitations, invites, changes a role and removes a member, auditing each as the token', async () => {
    const listed = await call(v1.members.GET, { token: viewer });
    expect(listed.status).toBe(200);
    conforms('/members', 'GET', listed);
    expect(listed.body.data.map((m: { role: string }) => m.role).sort()).toEqual(['ADMIN', 'DEVELOPER', 'OWNER', 'VIEWER']);
    expect(JSON.stringify(listed.body)).not.toMatch(/passwordHash|tokenHash/);

    const email = `${uniq('new')}@example.com`;
    const invited = await call(v1.members.POST, { method: 'POST', token: admin, body: { email, role: 'DEVELOPER' } });
    expect(invited.status).toBe(201);
    conforms('/members', 'POST', invited);
    expect(invited.body.link).toMatch(/^https:\/\/console\.example\.com\/invite\/inv_/);
    expect(await db.emailMessage.count({ where: { tenantId: a.tenantId, to: email } })).toBe(1);
    const again = await call(v1.members.GET, { token: admin });
    expect(again.body.invitations.map((i: { email: string }) => i.email)).toContain(email);
    expect(JSON.stringify(again.body)).not.toContain('tokenHash');

    const dev = await membership(a, 'DEVELOPER');
    const changed = await call(v1.member.PATCH, { method: 'PATCH', token: admin, params: { id: dev.id }, body: { role: 'VIEWER' } });
    expect(changed.status).toBe(200);
    conforms('/members/{id}', 'PATCH', changed);
    expect((await db.membership.findUniqueOrThrow({ where: { id: dev.id } })).role).toBe('VIEWER');

    const removed = await call(v1.member.DELETE, { method: 'DELETE', token: admin, params: { id: dev.id } });
    expect(removed.status).toBe(200);
    conforms('/members/{id}', 'DELETE', removed);
    expect(await db.membership.findUnique({ where: { id: dev.id } })).toBeNull();
    const audit = await db.auditLog.findMany({
      where: { tenantId: a.tenantId, action: { in: ['member.invited', 'member.role_changed', 'member.removed'] } },
    });
    expect(audit.map((x) => x.action).sort()).toEqual(['member.invited', 'member.removed', 'member.role_changed']);
    expect(audit.every((x) => x.actorType === 'token')).toBe(true);
  });

  it('refuses an admin token the owner role: not granted by invite or change, owners not changed or removed', async () => {
    const t = await makeTenant(db);
    const tk = await makeToken(t, 'ADMIN');
    const owner = await membership(t, 'OWNER');
    const adm = await membership(t, 'ADMIN');
    const email = `${uniq('o')}@example.com`;
    const invite = await call(v1.members.POST, { method: 'POST', token: tk, body: { email, role: 'OWNER' } });
    expect(invite.status).toBe(403);
    conforms('/members', 'POST', invite);
    expect(await db.invitation.count({ where: { tenantId: t.tenantId, email } })).toBe(0);
    const promote = await call(v1.member.PATCH, { method: 'PATCH', token: tk, params: { id: adm.id }, body: { role: 'OWNER' } });
    expect(promote.status).toBe(403);
    const demote = await call(v1.member.PATCH, { method: 'PATCH', token: tk, params: { id: owner.id }, body: { role: 'VIEWER' } });
    expect(demote.status).toBe(403);
    conforms('/members/{id}', 'PATCH', demote);
    const remove = await call(v1.member.DELETE, { method: 'DELETE', token: tk, params: { id: owner.id } });
    expect(remove.status).toBe(403);
    conforms('/members/{id}', 'DELETE', remove);
    expect((await db.membership.findUniqueOrThrow({ where: { id: owner.id } })).role).toBe('OWNER');
    expect((await db.membership.findUniqueOrThrow({ where: { id: adm.id } })).role).toBe('ADMIN');
  });

  it('keeps the last owner: neither removed nor demoted, even by that owner', async () => {
    const t = await makeTenant(db);
    const owner = await membership(t, 'OWNER');
    // One at a time: a second call started up front could reject before anyone awaits it.
    for (const attempt of [() => removeMember(t.owner, owner.id), () => changeMemberRole(t.owner, owner.id, { role: 'ADMIN' })]) {
      const err = await attempt().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ServiceError);
      expect((err as ServiceError).code).toBe('conflict');
    }
    expect((await db.membership.findUniqueOrThrow({ where: { id: owner.id } })).role).toBe('OWNER');
  });

  it('lets a developer or viewer token read members but not invite, change or remove them', async () => {
    const target = await membership(a, 'VIEWER');
    for (const tk of [developer, viewer]) {
      expect((await call(v1.members.GET, { token: tk })).status).toBe(200);
      const inv = await call(v1.members.POST, { method: 'POST', token: tk, body: { email: `${uniq('x')}@example.com` } });
      expect(inv.status).toBe(403);
      expect((await call(v1.member.PATCH, { method: 'PATCH', token: tk, params: { id: target.id }, body: { role: 'ADMIN' } })).status).toBe(
        403,
      );
      expect((await call(v1.member.DELETE, { method: 'DELETE', token: tk, params: { id: target.id } })).status).toBe(403);
    }
    expect(await db.membership.findUnique({ where: { id: target.id } })).toMatchObject({ role: 'VIEWER' });
  });

  it("answers 404 for another tenant's member and leaves it alone", async () => {
    const theirs = await membership(b, 'DEVELOPER');
    const patch = await call(v1.member.PATCH, { method: 'PATCH', token: admin, params: { id: theirs.id }, body: { role: 'VIEWER' } });
    expect(patch.status).toBe(404);
    conforms('/members/{id}', 'PATCH', patch);
    expect((await call(v1.member.DELETE, { method: 'DELETE', token: admin, params: { id: theirs.id } })).status).toBe(404);
    expect((await call(v1.member.DELETE, { method: 'DELETE', token: admin, params: { id: '../../etc' } })).status).toBe(404);
    expect(await db.membership.findUniqueOrThrow({ where: { id: theirs.id } })).toMatchObject({ role: 'DEVELOPER' });
    const list = await call(v1.members.GET, { token: admin });
    expect(list.body.data.map((m: { id: string }) => m.id)).not.toContain(theirs.id);
  });

  it('rejects hostile invitations and role changes with a 4xx naming the field, storing nothing', async () => {
    const before = await db.invitation.count({ where: { tenantId: a.tenantId } });
    const cases: [unknown, number][] = [
      [{ email: '<script>alert(1)</script>@x.com' }, 422],
      [{ email: 'not-an-email' }, 422],
      [{ email: `${'a'.repeat(400)}@example.com` }, 422],
      [{ email: 42 }, 422],
      [{ email: 'ok@example.com', role: 'ROOT' }, 422],
      [{ email: 'ok@example.com', tenantId: b.tenantId }, 422],
    ];
    for (const [body, status] of cases) {
      const res = await call(v1.members.POST, { method: 'POST', token: admin, body });
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(status);
      conforms('/members', 'POST', res);
    }
    expect(
      (await call(v1.members.POST, { method: 'POST', token: admin, rawBody: '{"email":', headers: { 'content-type': 'application/json' } }))
        .status,
    ).toBe(400);
    expect(
      (
        await call(v1.members.POST, {
          method: 'POST',
          token: admin,
          rawBody: JSON.stringify({ email: 'x'.repeat(1_600_000) }),
          headers: { 'content-type': 'application/json' },
        })
      ).status,
    ).toBe(413);
    expect(await db.invitation.count({ where: { tenantId: a.tenantId } })).toBe(before);
    const adm = await membership(a, 'ADMIN');
    const bad = await call(v1.member.PATCH, { method: 'PATCH', token: admin, params: { id: adm.id }, body: { role: ['ADMIN'] } });
    expect(bad.status).toBe(422);
    expect(bad.body.error.fields).toHaveProperty('role');
    expect((await call(v1.members.GET, {})).status).toBe(401);
  });
});

describe('access tokens in the admin API', () => {
  it('creates a token whose secret is shown once and stored as a hash, lists without secrets, and revokes it at once', async () => {
    const created = await call(v1.tokens.POST, {
      method: 'POST',
      token: admin,
      body: { name: 'ci deploy', role: 'DEVELOPER', expiresInDays: 30 },
    });
    expect(created.status).toBe(201);
    conforms('/tokens', 'POST', created);
    const secret = created.body.secret as string;
    expect(secret).toMatch(/^tgat_/);
    const row = await db.accessToken.findUniqueOrThrow({ where: { id: created.body.token.id } });
    expect(row.hash).toBe(hashApiKey(secret));
    expect(JSON.stringify(row)).not.toContain(secret);

    const listed = await call(v1.tokens.GET, { token: admin });
    conforms('/tokens', 'GET', listed);
    expect(listed.body.data.map((x: { id: string }) => x.id)).toContain(row.id);
    expect(JSON.stringify(listed.body)).not.toContain(secret);
    expect(JSON.stringify(listed.body)).not.toContain(row.hash);

    expect((await call(v1.apis.GET, { token: secret })).status).toBe(200);
    const revoked = await call(v1.token.DELETE, { method: 'DELETE', token: admin, params: { id: row.id } });
    expect(revoked.status).toBe(200);
    conforms('/tokens/{id}', 'DELETE', revoked);
    expect((await call(v1.apis.GET, { token: secret })).status).toBe(401);
    expect(
      await db.auditLog.count({ where: { tenantId: a.tenantId, targetId: row.id, action: { in: ['token.created', 'token.revoked'] } } }),
    ).toBe(2);
  });

  it('never mints a token above its creator and keeps developers and viewers out of token management', async () => {
    const owner = await call(v1.tokens.POST, { method: 'POST', token: admin, body: { name: 'root', role: 'OWNER' } });
    expect(owner.status).toBe(422);
    const mine = await db.accessToken.findFirstOrThrow({ where: { tenantId: a.tenantId } });
    for (const tk of [developer, viewer]) {
      const list = await call(v1.tokens.GET, { token: tk });
      expect(list.status).toBe(403);
      conforms('/tokens', 'GET', list);
      expect((await call(v1.tokens.POST, { method: 'POST', token: tk, body: { name: 'escalate', role: 'VIEWER' } })).status).toBe(403);
      expect((await call(v1.token.DELETE, { method: 'DELETE', token: tk, params: { id: mine.id } })).status).toBe(403);
    }
    expect(await db.accessToken.count({ where: { tenantId: a.tenantId, name: { in: ['root', 'escalate'] } } })).toBe(0);
  });

  it("answers 404 for another tenant's token and leaves it working", async () => {
    const theirs = await makeToken(b, 'ADMIN');
    const row = await db.accessToken.findUniqueOrThrow({ where: { hash: hashApiKey(theirs) } });
    const res = await call(v1.token.DELETE, { method: 'DELETE', token: admin, params: { id: row.id } });
    expect(res.status).toBe(404);
    conforms('/tokens/{id}', 'DELETE', res);
    expect((await call(v1.apis.GET, { token: theirs })).status).toBe(200);
    expect((await call(v1.tokens.GET, { token: admin })).body.data.map((x: { id: string }) => x.id)).not.toContain(row.id);
  });

  it('rejects hostile token input with 422 and stores nothing', async () => {
    const before = await db.accessToken.count({ where: { tenantId: a.tenantId } });
    for (const body of [
      { name: '<img src=x onerror=alert(1)>' },
      { name: '' },
      { name: 'x'.repeat(81) },
      { name: 'ok', expiresInDays: 0 },
      { name: 'ok', expiresInDays: 10_000 },
      { name: 'ok', expiresInDays: '30' },
      { name: 'ok', hash: 'mine' },
    ]) {
      const res = await call(v1.tokens.POST, { method: 'POST', token: admin, body });
      expect(res.status, JSON.stringify(body).slice(0, 60)).toBe(422);
      conforms('/tokens', 'POST', res);
    }
    expect(await db.accessToken.count({ where: { tenantId: a.tenantId } })).toBe(before);
  });
});
