import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testEnv } from '../harness';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const db = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [path.join(root, 'scripts/db.mjs'), ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });

describe('migrations', () => {
  const database = `tg_migrations_${process.pid}_${Date.now().toString(36)}`;
  let admin: pg.Client;
  let url: string;

  beforeAll(async () => {
    const u = new URL(testEnv().databaseUrl);
    admin = new pg.Client({ connectionString: u.toString() });
    await admin.connect();
    await admin.query(`CREATE DATABASE "${database}"`);
    u.pathname = `/${database}`;
    url = u.toString();
  });

  afterAll(async () => {
    await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    await admin.end();
  });

  it('apply to an empty database, every one recorded, and a second run changes nothing', async () => {
    const dirs = readdirSync(path.join(root, 'prisma/migrations'), { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
    const first = db(['migrate', url]);
    expect(first.status, first.stderr).toBe(0);
    for (const dir of dirs) expect(first.stdout).toContain(dir);

    const check = new pg.Client({ connectionString: url });
    await check.connect();
    const { rows } = await check.query('SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL ORDER BY 1');
    await check.end();
    expect(rows.map((r) => r.migration_name)).toEqual([...dirs].sort());

    const second = db(['migrate', url]);
    expect(second.status).toBe(0);
    expect(second.stdout).toContain('up to date');
  });

  it('show no drift between schema.prisma and what the migrations build', () => {
    const res = db(['diff']);
    expect(res.stdout + res.stderr).toContain('no drift');
    expect(res.status).toBe(0);
  });

  it('report drift, with the SQL, when schema.prisma changes without a migration', () => {
    const copy = mkdtempSync(path.join(tmpdir(), 'tg-prisma-'));
    try {
      cpSync(path.join(root, 'prisma'), copy, { recursive: true, filter: (src) => !src.endsWith('seed.ts') });
      appendFileSync(path.join(copy, 'schema.prisma'), '\nmodel DriftProbe {\n  id String @id\n}\n');
      const res = db(['diff'], { TOLLGATE_PRISMA_DIR: copy });
      expect(res.status).toBe(2);
      expect(res.stdout).toContain('CREATE TABLE "DriftProbe"');
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });

  it('refuse a bad command or a missing database with a clear message, not a stack trace', () => {
    const bad = db(['frobnicate']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('usage:');
    // The run's own server (npm test may have started a private one on another port), a database it lacks.
    const missingUrl = new URL(testEnv().databaseUrl);
    missingUrl.pathname = '/tg_no_such_database_x';
    const missing = db(['migrate', missingUrl.toString()]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/db migrate: .*does not exist/);
    expect(missing.stderr).not.toMatch(/\n\s+at /);
  });
});
