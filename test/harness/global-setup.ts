import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Redis } from 'ioredis';
import type { TestProject } from 'vitest/node';
import { findChromium } from '../../scripts/start/chromium.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    redisUrl: string;
    redisPrefix: string;
    /** A migrated copy of the run's database that nobody connects to: the template for isolated ones. */
    templateDatabase: string;
    /** The Chromium the browser suites drive ('' when none was found). */
    chromiumPath: string;
  }
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** Creates this run's database (migrated) and Redis prefix; drops both afterwards. */
export default async function setup(project: TestProject) {
  const baseUrl = process.env.DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/postgres';
  const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
  const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const database = `tg_test_${runId}`;
  const redisPrefix = `tgtest_${runId}`;

  const admin = new pg.Client({ connectionString: baseUrl });
  try {
    await admin.connect();
  } catch (err) {
    throw new Error(`tests need PostgreSQL at ${baseUrl} (set DATABASE_URL): ${(err as Error).message}`);
  }
  await admin.query(`CREATE DATABASE "${database}"`);
  const databaseUrl = withDatabase(baseUrl, database);

  const migrated = spawnSync(process.execPath, [path.join(root, 'scripts/db.mjs'), 'migrate', databaseUrl], {
    cwd: root,
    encoding: 'utf8',
  });
  if (migrated.status !== 0) throw new Error(`migrating the test database failed:\n${migrated.stdout}${migrated.stderr}`);
  // Files that need a database of their own copy this one (a file copy, no migrations to replay:
  // replaying them took over two minutes once on a contended host and timed a suite out).
  const templateDatabase = `${database}_tmpl`;
  await admin.query(`CREATE DATABASE "${templateDatabase}" TEMPLATE "${database}"`);

  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
  } catch (err) {
    throw new Error(`tests need Redis at ${redisUrl} (set REDIS_URL): ${(err as Error).message}`);
  }

  // `npm test` finds (or installs) the browser first; a direct `vitest run` finds one here or
  // leaves the browser suites to say what is missing.
  if (!process.env.CHROMIUM_PATH) {
    const found = findChromium();
    if (found && 'path' in found) process.env.CHROMIUM_PATH = found.path;
  }
  project.provide('chromiumPath', process.env.CHROMIUM_PATH ?? '');
  project.provide('databaseUrl', databaseUrl);
  project.provide('redisUrl', redisUrl);
  project.provide('redisPrefix', redisPrefix);
  project.provide('templateDatabase', templateDatabase);
  // Child processes the tests start (gateway, worker, console) read the same settings.
  process.env.TG_TEST_DATABASE_URL = databaseUrl;
  process.env.TG_TEST_REDIS_PREFIX = redisPrefix;

  return async () => {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${redisPrefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.unlink(...keys);
    } while (cursor !== '0');
    await redis.quit();
    await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    // The template, and any copy a suite made but never dropped (its beforeAll timed out before
    // afterAll had anything to drop): every copy's name starts with the run's database name.
    const copies = await admin.query<{ datname: string }>('SELECT datname FROM pg_database WHERE starts_with(datname, $1)', [
      `${database}_`,
    ]);
    for (const { datname } of copies.rows) await admin.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
    await admin.end();
  };
}
