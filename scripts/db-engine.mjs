// Prisma's migrations without Prisma's native engine: the CLI would download a schema-engine
// binary, which fails offline. The WASM build of the same engine, driven through the pg driver
// adapter, does what `migrate deploy`, `migrate diff` and `migrate dev --create-only` need.
// Run through scripts/db.mjs (it adds the Node flags this needs); not meant to be imported.
import { readFileSync, readdirSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SchemaEngine } from '@prisma/schema-engine-wasm';
import { bindMigrationAwareSqlAdapterFactory } from '@prisma/driver-adapter-utils';
import { PrismaPg } from '@prisma/adapter-pg';
import pgDriver from 'pg';
import { randomUUID } from 'node:crypto';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// Overridable so tests can check a modified copy of the schema without touching the real one.
const prismaDir = path.resolve(process.env.TOLLGATE_PRISMA_DIR || path.join(root, 'prisma'));
const schemaPath = path.join(prismaDir, 'schema.prisma');
const migrationsDir = path.join(prismaDir, 'migrations');
const SNAPSHOT = 'schema.prisma';

export function listMigrations() {
  const dirs = existsSync(migrationsDir)
    ? readdirSync(migrationsDir, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name)
        .sort()
    : [];
  const lockPath = path.join(migrationsDir, 'migration_lock.toml');
  return {
    baseDir: migrationsDir,
    lockfile: { path: 'migration_lock.toml', content: existsSync(lockPath) ? readFileSync(lockPath, 'utf8') : null },
    shadowDbInitScript: '',
    migrationDirectories: dirs.map((name) => {
      const file = path.join(migrationsDir, name, 'migration.sql');
      return {
        path: name,
        migrationFile: {
          path: 'migration.sql',
          content: existsSync(file) ? { tag: 'ok', value: readFileSync(file, 'utf8') } : { tag: 'error', value: 'missing migration.sql' },
        },
      };
    }),
  };
}

const filters = { externalTables: [], externalEnums: [] };
const schemaFile = (content, p = 'schema.prisma') => ({ files: [{ path: p, content }] });

// The engine always wants a live connection, even to diff two schema files.
const defaultUrl = () => process.env.DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/postgres';

// The pg adapter rejects PostgreSQL's internal one-byte "char" type (oid 18), which the engine's
// catalogue queries return when it describes a schema; it is text to us.
const PG_CHAR = 18;
const PG_TEXT = 25;
function readCharAsText(adapter) {
  const performIO = adapter.performIO.bind(adapter);
  adapter.performIO = async (...args) => {
    const res = await performIO(...args);
    for (const f of res.fields ?? []) if (f.dataTypeID === PG_CHAR) f.dataTypeID = PG_TEXT;
    return res;
  };
  const startTransaction = adapter.startTransaction?.bind(adapter);
  if (startTransaction) adapter.startTransaction = async (...a) => readCharAsText(await startTransaction(...a));
  return adapter;
}

async function engineFor(url = defaultUrl()) {
  // Discrete fields, not a connection string: the adapter's shadow database is made by
  // overriding `database`, which a connection string would silently win over.
  const u = new URL(url);
  const config = {
    host: decodeURIComponent(u.hostname),
    port: Number(u.port || 5432),
    user: decodeURIComponent(u.username || 'postgres'),
    password: u.password ? decodeURIComponent(u.password) : undefined,
    database: decodeURIComponent(u.pathname.slice(1) || 'postgres'),
  };
  const pg = new PrismaPg(config);
  const connect = pg.connect.bind(pg);
  pg.connect = async () => readCharAsText(await connect());
  // The adapter's own shadow database outlives nothing: it drops the database before closing
  // its pool, which PostgreSQL refuses. Ours closes first, then drops.
  pg.connectToShadowDb = async () => {
    const name = `tg_shadow_${randomUUID().replace(/-/g, '')}`;
    const admin = new pgDriver.Client(config);
    await admin.connect();
    await admin.query(`CREATE DATABASE "${name}"`);
    const adapter = readCharAsText(await new PrismaPg({ ...config, database: name }).connect());
    const dispose = adapter.dispose.bind(adapter);
    adapter.dispose = async () => {
      await dispose();
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.end();
    };
    return adapter;
  };
  const factory = bindMigrationAwareSqlAdapterFactory(pg);
  return SchemaEngine.new({ datamodels: [[schemaPath, readFileSync(schemaPath, 'utf8')]] }, () => {}, factory);
}

async function scriptBetween(fromSchema, toSchema) {
  const engine = await engineFor();
  const from = fromSchema == null ? { tag: 'empty' } : { tag: 'schemaDatamodel', ...schemaFile(fromSchema) };
  const to = { tag: 'schemaDatamodel', ...schemaFile(toSchema) };
  const res = await engine.diff({ from, to, script: true, exitCode: null, filters });
  return res.stdout ?? '';
}

function latestSnapshot() {
  const dirs = listMigrations().migrationDirectories.map((d) => d.path);
  for (const d of dirs.reverse()) {
    const p = path.join(migrationsDir, d, SNAPSHOT);
    if (existsSync(p)) return readFileSync(p, 'utf8');
  }
  return null;
}

const isEmptyScript = (sql) => sql.split('\n').every((l) => !l.trim() || l.trim().startsWith('--'));

export async function migrate(url) {
  const engine = await engineFor(url);
  const out = await engine.applyMigrations({ migrationsList: listMigrations(), filters });
  return out.appliedMigrationNames;
}

/** SQL that would bring the last migration's schema to the current schema.prisma ('' = no drift). */
export async function pendingSchemaChange() {
  const sql = await scriptBetween(latestSnapshot(), readFileSync(schemaPath, 'utf8'));
  return isEmptyScript(sql) ? '' : sql;
}

/**
 * Difference between what the migrations build and schema.prisma: the engine replays every
 * migration into a throw-away shadow database and compares ('' = no drift).
 */
export async function migrationsDrift(url = defaultUrl()) {
  const engine = await engineFor(url);
  const res = await engine.diff({
    from: { tag: 'migrations', ...listMigrations() },
    to: { tag: 'schemaDatamodel', ...schemaFile(readFileSync(schemaPath, 'utf8')) },
    script: true,
    exitCode: null,
    filters,
  });
  const sql = res.stdout ?? '';
  return isEmptyScript(sql) ? '' : sql;
}

export async function newMigration(name) {
  if (!/^[a-z0-9_]+$/.test(name)) throw new Error('migration name: lower-case letters, digits and _ only');
  const current = readFileSync(schemaPath, 'utf8');
  const sql = await pendingSchemaChange();
  if (!sql) return null;
  const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
  const dir = path.join(migrationsDir, `${stamp}_${name}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'migration.sql'), sql);
  writeFileSync(path.join(dir, SNAPSHOT), current);
  const lock = path.join(migrationsDir, 'migration_lock.toml');
  if (!existsSync(lock)) writeFileSync(lock, '# Please do not edit this file manually\nprovider = "postgresql"\n');
  return dir;
}

const [cmd, arg] = process.argv.slice(2);
if (cmd) {
  try {
    if (cmd === 'migrate') {
      const url = arg || process.env.DATABASE_URL;
      if (!url) throw new Error('DATABASE_URL is not set');
      const applied = await migrate(url);
      console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
    } else if (cmd === 'diff') {
      const sql = await pendingSchemaChange();
      let drift = '';
      const url = arg || process.env.DATABASE_URL;
      drift = await migrationsDrift(url || undefined);
      if (sql) console.log(`schema.prisma has changes no migration holds:\n${sql}`);
      if (drift) console.log(`the migrations do not build schema.prisma:\n${drift}`);
      if (!sql && !drift) console.log('no drift');
      process.exitCode = sql || drift ? 2 : 0;
    } else if (cmd === 'new') {
      const dir = await newMigration(arg || 'change');
      console.log(dir ? `created ${path.relative(root, dir)}` : 'no schema change: nothing to migrate');
    } else {
      throw new Error(`unknown command ${cmd}`);
    }
  } catch (err) {
    console.error(`db ${cmd}: ${err?.message ?? err}`);
    process.exitCode = 1;
  }
}
