import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { enqueueKeyPublish, enqueuePolicyPublish, startOutboxRelay } from '@tollgate/db';
import { KeyRecord, PolicySnapshot, type Keyspace } from '@tollgate/policy';
import { testEnv, testKeyspace, testRedis, waitFor } from '../harness';
import { createFixture, createIsolatedDatabase, nextMessage } from './helpers';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let env: Awaited<ReturnType<typeof createIsolatedDatabase>>;
let redis: Redis;
let sub: Redis;
let ks: Keyspace;
const children: ChildProcess[] = [];

beforeAll(async () => {
  env = await createIsolatedDatabase();
  redis = testRedis();
  sub = testRedis();
  ks = testKeyspace('crash');
  await sub.subscribe(ks.eventsChannel);
});
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});
afterAll(async () => {
  sub?.disconnect();
  redis?.disconnect();
  await env?.drop();
});

/** Starts relay-child.ts and resolves once it prints `line` (READY, HANG …). */
function startChild(extra: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'test/publishing/relay-child.ts')], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: env.url, REDIS_URL: testEnv().redisUrl, REDIS_PREFIX: ks.prefix, ...extra },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const waitLine = (prefix: string) =>
    waitFor(() => out.split('\n').find((l) => l.startsWith(prefix)), { timeoutMs: 40_000, what: `child to print ${prefix}` });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { child, waitLine, exited };
}

const version = async (tenantId: string) => {
  const raw = await redis.get(ks.policy(tenantId));
  return raw ? PolicySnapshot.parse(JSON.parse(raw)).version : null;
};
const keyStatus = async (hash: string) => {
  const raw = await redis.get(ks.key(hash));
  return raw ? KeyRecord.parse(JSON.parse(raw)).status : null;
};

async function commitChanges(f: Awaited<ReturnType<typeof createFixture>>) {
  return env.db.$transaction(async (tx) => {
    await tx.plan.update({ where: { id: f.proId }, data: { rateLimit: 250 } });
    await tx.apiKey.update({ where: { id: f.keyId }, data: { status: 'REVOKED', revokedAt: new Date() } });
    await enqueueKeyPublish(tx, f.keyId);
    return (await enqueuePolicyPublish(tx, f.tenantId)).version;
  });
}

describe('killing the publisher between commit and publish', { timeout: 90_000 }, () => {
  it('loses nothing when the relay dies after the commit but before publishing: a new relay replays the outbox', async () => {
    const f = await createFixture(env.db);
    const c = startChild();
    await c.waitLine('READY');
    c.child.kill('SIGSTOP');
    const v = await commitChanges(f);
    c.child.kill('SIGKILL');
    await c.exited;
    expect(await version(f.tenantId)).toBeNull();
    expect(await env.db.outboxEvent.count({ where: { tenantId: f.tenantId, publishedAt: null } })).toBe(2);

    const announced = nextMessage(sub, ks.eventsChannel, (m) => m.type === 'policy.updated' && m.tenantId === f.tenantId, 30_000);
    const next = startChild();
    await announced;
    await waitFor(async () => (await version(f.tenantId)) === v && (await keyStatus(f.hash)) === 'revoked', {
      timeoutMs: 30_000,
      what: 'replayed state',
    });
    await waitFor(async () => (await env.db.outboxEvent.count({ where: { tenantId: f.tenantId, publishedAt: null } })) === 0, {
      timeoutMs: 30_000,
      what: 'rows marked',
    });
    next.child.kill('SIGKILL');
  });

  it('loses nothing when the relay dies after writing Redis but before marking the rows: the replay announces again', async () => {
    const f = await createFixture(env.db);
    const c = startChild({ HANG_BEFORE_MARK: '1' });
    await c.waitLine('READY');
    const v = await commitChanges(f);
    await c.waitLine('HANG');
    expect(await version(f.tenantId)).toBe(v); // written to Redis, not yet marked in PostgreSQL
    c.child.kill('SIGKILL');
    await c.exited;
    // PostgreSQL rolled the dead relay's transaction back: the claim is gone, the rows are due again.
    await waitFor(async () => (await env.db.outboxEvent.count({ where: { tenantId: f.tenantId, publishedAt: null } })) === 2, {
      timeoutMs: 30_000,
      what: 'rows still unpublished',
    });

    const policyAgain = nextMessage(
      sub,
      ks.eventsChannel,
      (m) => m.type === 'policy.updated' && m.tenantId === f.tenantId && m.version === v,
      30_000,
    );
    const keyAgain = nextMessage(sub, ks.eventsChannel, (m) => m.type === 'key.revoked' && m.hash === f.hash, 30_000);
    const relay = startOutboxRelay({ db: env.db, databaseUrl: env.url, redis, keyspace: ks, pollMs: 200 });
    try {
      await Promise.all([policyAgain, keyAgain]);
      expect(await version(f.tenantId)).toBe(v);
      expect(await keyStatus(f.hash)).toBe('revoked');
      await waitFor(async () => (await env.db.outboxEvent.count({ where: { tenantId: f.tenantId, publishedAt: null } })) === 0, {
        timeoutMs: 30_000,
        what: 'rows marked',
      });
      const t = await env.db.tenant.findUnique({ where: { id: f.tenantId } });
      expect(t!.publishedPolicyVersion).toBe(v);
    } finally {
      await relay.stop();
    }
  });
});
