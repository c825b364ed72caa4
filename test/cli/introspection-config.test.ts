// `tollgate apply | export | diff` with an introspection API, a JWT consumer claim and lifecycle
// dates (ADR 0028): the secret comes from the environment, is never exported, and a second diff
// is clean although the console never hands the secret back.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileTenantPolicy, type Db } from '@tollgate/db';
import { testDb } from '../harness/db';
import { makeTenant, makeToken } from '../console/fixtures';
import { runCli } from '../../apps/cli/src/cli';
import { startAdminServer, type AdminServer } from './admin-server';

let db: Db;
let server: AdminServer;
let dir: string;

async function cli(args: string[], env: Record<string, string | undefined>) {
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

const FILE = `version: 1
apis:
  - slug: orders
    name: Orders
    basePath: /orders
    authMode: INTROSPECTION
    introspection:
      endpoint: https://auth.example.com/oauth2/introspect
      clientId: gateway
      clientSecret: \${env:TOLLGATE_INTROSPECTION_SECRET}
      cacheMaxTtlSeconds: 30
      requiredScopes: [orders.read]
      consumerClaim: client_id
    deprecatedAt: 2026-01-01T00:00:00Z
    sunsetAt: 2027-06-30T00:00:00Z
    deprecationLink: https://docs.example.com/orders-v2
    targets:
      - url: https://orders.upstream.example.com
  - slug: users
    name: Users
    basePath: /users
    authMode: JWT
    jwt:
      jwksUrl: https://auth.example.com/.well-known/jwks.json
      consumerClaim: sub
    targets:
      - url: https://users.upstream.example.com
`;

beforeAll(async () => {
  db = testDb();
  server = await startAdminServer(db);
  dir = mkdtempSync(path.join(tmpdir(), 'tg-cli-oauth-'));
});
afterAll(async () => {
  await server?.close();
  await db.$disconnect();
});

describe('introspection and lifecycle in the configuration file', () => {
  it('applies them, exports them without the secret, and diffs clean afterwards', async () => {
    const t = await makeTenant(db);
    const env = { TOLLGATE_TOKEN: await makeToken(t, 'ADMIN'), TOLLGATE_INTROSPECTION_SECRET: 'from-the-env-123' };
    writeFileSync(path.join(dir, 'oauth.yaml'), FILE);
    const applied = await cli(['apply', 'oauth.yaml'], env);
    expect(applied.code, applied.err).toBe(0);
    const row = await db.api.findFirstOrThrow({ where: { tenantId: t.tenantId, slug: 'orders' } });
    expect(row.authMode).toBe('INTROSPECTION');
    expect(row.introspectionConfig).toMatchObject({ clientSecret: 'from-the-env-123', requiredScopes: ['orders.read'] });
    expect(row.sunsetAt?.toISOString()).toBe('2027-06-30T00:00:00.000Z');
    const users = await db.api.findFirstOrThrow({ where: { tenantId: t.tenantId, slug: 'users' } });
    expect(users.jwtConfig).toMatchObject({ consumerClaim: 'sub' });
    // What the file set reaches the gateway's snapshot.
    const snap = await compileTenantPolicy(db, t.tenantId);
    expect(snap!.apis.find((a) => a.slug === 'orders')).toMatchObject({
      authMode: 'introspection',
      introspection: { clientSecret: 'from-the-env-123', consumerClaim: 'client_id' },
      lifecycle: { sunsetAt: Date.UTC(2027, 5, 30) },
    });
    expect(snap!.apis.find((a) => a.slug === 'users')!.jwt!.consumerClaim).toBe('sub');

    const diff = await cli(['diff', 'oauth.yaml'], env);
    expect(diff.code, diff.out).toBe(0);

    const exported = await cli(['export', '-o', 'out.yaml'], env);
    expect(exported.code, exported.err).toBe(0);
    const text = readFileSync(path.join(dir, 'out.yaml'), 'utf8');
    expect(text).not.toContain('from-the-env-123');
    expect(text).toContain('consumerClaim: client_id');
    expect(text).toMatch(/clientSecret: null/);
    // The exported file applies as is: a null secret keeps the stored one.
    const again = await cli(['apply', 'out.yaml'], env);
    expect(again.code, again.err).toBe(0);
    const after = await db.api.findFirstOrThrow({ where: { id: row.id } });
    expect(after.introspectionConfig).toMatchObject({ clientSecret: 'from-the-env-123' });
  });

  it('refuses an INTROSPECTION API without settings, offline, naming the place', async () => {
    writeFileSync(
      path.join(dir, 'bad.yaml'),
      'version: 1\napis:\n  - slug: xx\n    name: X\n    basePath: /xx\n    authMode: INTROSPECTION\n    targets:\n      - url: https://x.example.com\n',
    );
    const res = await cli(['validate', 'bad.yaml'], {});
    expect(res.code).toBe(65);
    expect(res.err).toContain('an INTROSPECTION API needs introspection settings');
  });
});
