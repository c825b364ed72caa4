// The console's /healthz (apps/console/src/server/shared/health.ts): a fast 503 with a reason when
// PostgreSQL is down, whether it refuses connections or accepts them and never answers.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrismaClient, type Db } from '@tollgate/db';
import { testDb } from '../harness/db';
import { checkHealth } from '../../apps/console/src/server/shared/health';

const warnings: string[] = [];
const warn = (_obj: object, msg: string) => void warnings.push(msg);

let live: Db;
let hanging: net.Server;
const held: net.Socket[] = [];
const closed: { port: number } = { port: 0 };

beforeAll(async () => {
  live = testDb();
  // A "database" that accepts the connection and never says a word.
  hanging = net.createServer((s) => void held.push(s));
  await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r));
  // A port nobody listens on: bind, note, close.
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  closed.port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
});
afterAll(async () => {
  for (const s of held) s.destroy();
  await new Promise<void>((r) => hanging.close(() => r()));
  await live.$disconnect();
});

describe('console health check', () => {
  it('is ok when PostgreSQL answers, and reports a Redis outage as degraded, not down', async () => {
    expect(await checkHealth({ db: live, redisStatus: 'ready', warn })).toEqual({ status: 'ok', redis: 'ok' });
    expect(await checkHealth({ db: live, redisStatus: 'reconnecting', warn })).toEqual({ status: 'ok', redis: 'degraded' });
  });

  it('answers database_unavailable when PostgreSQL refuses connections', async () => {
    const db = createPrismaClient(`postgresql://postgres@127.0.0.1:${closed.port}/nothing`, { max: 1 });
    try {
      const health = await checkHealth({ db, redisStatus: 'ready', warn }, 5_000);
      expect(health).toEqual({ status: 'unavailable', reason: 'database_unavailable', redis: 'ok' });
      expect(warnings).toContain('health check: database unavailable');
    } finally {
      await db.$disconnect();
    }
  });

  it('answers database_timeout within its bound when PostgreSQL accepts and never answers', async () => {
    const port = (hanging.address() as net.AddressInfo).port;
    const db = createPrismaClient(`postgresql://postgres@127.0.0.1:${port}/nothing`, { max: 1 });
    const health = await checkHealth({ db, redisStatus: 'ready', warn }, 200);
    expect(health).toEqual({ status: 'unavailable', reason: 'database_timeout', redis: 'ok' });
    expect(warnings).toContain('health check: database did not answer in time');
    expect(held.length).toBeGreaterThan(0);
    for (const s of held) s.destroy();
    await db.$disconnect().catch(() => undefined);
  });
});
