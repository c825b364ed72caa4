import { randomBytes } from 'node:crypto';
import { newId, type Db } from '@tollgate/db';
import { expect } from 'vitest';
import { ServiceError, type Role, type ServiceContext } from '../../apps/console/src/server/shared/context';
import { createAccessToken } from '../../apps/console/src/server/console/tokens';

export const uniq = (label: string) => `${label}-${randomBytes(4).toString('hex')}`;

export type TestTenant = {
  tenantId: string;
  slug: string;
  ctx: (role: Role) => ServiceContext;
  owner: ServiceContext;
};

/** A tenant with an owner; ctx(role) acts as a member with that role (members are created per role). */
export async function makeTenant(db: Db, opts: { allowPrivateTargets?: boolean } = {}): Promise<TestTenant> {
  const tenantId = newId('tenant');
  const slug = uniq('t');
  await db.tenant.create({ data: { id: tenantId, slug, name: `Tenant ${slug}`, allowPrivateTargets: opts.allowPrivateTargets ?? false } });
  const users = new Map<Role, string>();
  const userFor = async (role: Role) => {
    let id = users.get(role);
    if (!id) {
      id = newId('user');
      await db.user.create({
        data: { id, email: `${role.toLowerCase()}-${slug}@example.com`, name: `${role} ${slug}`, passwordHash: 'scrypt$x' },
      });
      await db.membership.create({ data: { id: newId('membership'), tenantId, userId: id, role } });
      users.set(role, id);
    }
    return id;
  };
  const ownerId = await userFor('OWNER');
  for (const r of ['ADMIN', 'DEVELOPER', 'VIEWER'] as const) await userFor(r);
  const ctx = (role: Role): ServiceContext => ({ db, tenantId, role, actor: { type: 'user', id: users.get(role)! } });
  return { tenantId, slug, ctx, owner: { db, tenantId, role: 'OWNER', actor: { type: 'user', id: ownerId } } };
}

/** A bearer token for the admin API with the given role. */
export async function makeToken(t: TestTenant, role: Exclude<Role, 'OWNER'> = 'ADMIN'): Promise<string> {
  const { secret } = await createAccessToken(t.owner, { name: uniq('token'), role });
  return secret;
}

export const publicResolver = async () => ['93.184.216.34'];

/** The ServiceError a service call must reject with. */
export async function failure(p: Promise<unknown>): Promise<ServiceError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ServiceError);
  return err as ServiceError;
}

export function apiInput(over: Record<string, unknown> = {}) {
  const s = uniq('api');
  return { name: `API ${s}`, slug: s, basePath: `/${s}`, targets: [{ url: 'https://upstream.example.com', weight: 1 }], ...over };
}

export function planInput(over: Record<string, unknown> = {}) {
  const s = uniq('plan');
  return { name: `Plan ${s}`, slug: s, rateLimit: 10, rateWindowSeconds: 1, monthlyQuota: 1000, ...over };
}

type Json = Record<string, unknown>;

/** Calls a route handler like Next does: a Request plus a params promise. */
export async function call(
  handler: (req: Request, route: { params: Promise<never> }) => Promise<Response>,
  opts: {
    method?: string;
    token?: string | null;
    body?: unknown;
    rawBody?: string;
    params?: Record<string, string>;
    query?: string;
    headers?: Record<string, string>;
  } = {},
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a JSON body of any shape, asserted field by field
): Promise<{ status: number; body: any; headers: Headers }> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined;
  if (opts.rawBody !== undefined) body = opts.rawBody;
  else if (opts.body !== undefined) body = JSON.stringify(opts.body);
  if (body !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
  const req = new Request(`http://console.test/api/v1/x${opts.query ? `?${opts.query}` : ''}`, {
    method: opts.method ?? 'GET',
    headers,
    body,
  });
  // Each route declares its own params shape; the test supplies the matching one.
  const res = await handler(req, { params: Promise.resolve(opts.params ?? {}) as Promise<never> });
  const text = await res.text();
  let parsed: Json | null = null;
  try {
    parsed = text ? (JSON.parse(text) as Json) : null;
  } catch {
    parsed = { raw: text };
  }
  return { status: res.status, body: parsed, headers: res.headers };
}
