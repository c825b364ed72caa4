// A batch with an event PostgreSQL refuses (here: a check constraint an operator added, then
// dropped) is applied without that event; the event is parked, listed by the worker CLI and
// replayed with one command once the cause is gone, at most once however often it is run.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sql } from 'postgres';
import { createPrismaClient, type Db } from '@tollgate/db';
import { cloneRunDatabase } from '../harness/index';
import { createSql } from '../../apps/worker/src/db';
import { GroupCommit } from '../../apps/worker/src/ingest/group-commit';
import { createFixture, makeBatch, makeEvent } from './fixtures';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function cli(args: string[], databaseUrl: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'apps/worker/src/cli.ts'), ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', DATABASE_URL: databaseUrl, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

describe('parked usage', () => {
  let database: { url: string; drop: () => Promise<void> };
  let db: Db;
  let sql: Sql;
  beforeAll(async () => {
    database = await cloneRunDatabase('parked');
    db = createPrismaClient(database.url, { max: 2 });
    sql = createSql(database.url, 4);
  });
  afterAll(async () => {
    await sql?.end();
    await db?.$disconnect();
    await database?.drop();
  });

  it('parks only the refused event, lists it, and replays it exactly once with one CLI command', async () => {
    const f = await createFixture(db);
    await sql.unsafe(`ALTER TABLE "UsageRollup" ADD CONSTRAINT "no_huge_requests" CHECK ("bytesIn" < 1000000000)`);
    const bad = makeEvent(f, { bytesIn: 2_000_000_000 });
    const batch = makeBatch([...Array.from({ length: 300 }, () => makeEvent(f)), bad, ...Array.from({ length: 199 }, () => makeEvent(f))]);
    const groups = new GroupCommit(sql, { maxEvents: 10_000, maxInFlight: 1 });
    expect(await groups.apply(batch)).toEqual({ applied: true });
    const total = async () =>
      (await db.usageRollup.aggregate({ where: { tenantId: f.tenantId, granularity: 'minute' }, _sum: { requests: true } }))._sum.requests;
    const billed = async () =>
      (await db.ledgerLine.aggregate({ where: { subscriptionId: f.subscriptionId }, _sum: { quantity: true } }))._sum.quantity;
    expect(await total()).toBe(499n);
    expect(await billed()).toBe(499n);

    const listed = await cli(['parked', 'list'], database.url);
    expect(listed.code).toBe(0);
    const rows = listed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; errorCode: string; reason: string });
    expect(rows.map((r) => [r.id, r.reason, r.errorCode])).toEqual([[`${batch.batchId}:300`, 'data-error', '23514']]);

    // Still refused: it stays parked and the command says so.
    const refused = await cli(['parked', 'replay'], database.url);
    expect(refused.code).toBe(1);
    expect(await total()).toBe(499n);

    await sql.unsafe(`ALTER TABLE "UsageRollup" DROP CONSTRAINT "no_huge_requests"`);
    const replayed = await cli(['parked', 'replay'], database.url);
    expect(replayed.code, replayed.stderr + replayed.stdout).toBe(0);
    expect(await total()).toBe(500n);
    expect(await billed()).toBe(500n);
    // Run again for the id: nothing more (the row is replayed; its replay batch id is claimed).
    expect((await cli(['parked', 'replay', '--id', `${batch.batchId}:300`], database.url)).code).toBe(0);
    expect(await total()).toBe(500n);
    const all = (await cli(['parked', 'list', '--all'], database.url)).stdout.trim().split('\n');
    expect(all.map((l) => (JSON.parse(l) as { replayedAt: string | null }).replayedAt)).toEqual([expect.any(String)]);
  }, 150_000);
});
