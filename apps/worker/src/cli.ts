// Operator commands. `republish` rebuilds Redis from PostgreSQL (a fresh or restored Redis,
// disaster recovery): every tenant's snapshot and every key record, or one tenant's with --tenant.
// `parked list` shows usage the worker parked because of its own data (ADR 0018); `parked replay`
// applies it again once the cause is fixed (each row at most once, however often it is run).
// Exit codes: 0 done, 1 failed (or partly failed), 2 bad usage or configuration.
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { createLogger, EnvError, type Logger } from '@tollgate/config';
import { createPrismaClient, markPublished, republishAll, restoreQuotaCounters } from '@tollgate/db';
import { createKeyspace } from '@tollgate/policy';
import { createSql } from './db';
import { loadWorkerCliConfig, type WorkerCliConfig } from './env';
import { listParked, replayParked } from './ingest/parked';

const USAGE = `usage: tsx apps/worker/src/cli.ts republish [--tenant <tenantId>] [--announce-keys] [--force]
       tsx apps/worker/src/cli.ts parked list [--all]
       tsx apps/worker/src/cli.ts parked replay [--id <parkedId>]...
  --force rewrites tenants whose published version Redis already holds (skipped otherwise)
  env: DATABASE_URL (required), REDIS_URL, REDIS_PREFIX, LOG_LEVEL`;

class UsageError extends Error {}

type Command =
  | { command: 'help' }
  | { command: 'republish'; tenantId?: string; announceKeys: boolean; force: boolean }
  | { command: 'parked-list'; all: boolean }
  | { command: 'parked-replay'; ids?: string[] };

function parseCommand(argv: string[]): Command {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      tenant: { type: 'string' },
      'announce-keys': { type: 'boolean' },
      force: { type: 'boolean' },
      all: { type: 'boolean' },
      id: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return { command: 'help' };
  const [command, ...extra] = positionals;
  if (command === 'parked') {
    const [sub, ...more] = extra;
    if (more.length || (sub !== 'list' && sub !== 'replay'))
      throw new UsageError(sub ? `unknown parked command ${JSON.stringify(sub)}` : 'parked needs list or replay');
    for (const id of values.id ?? [])
      if (!/^[A-Za-z0-9_.:-]{1,300}$/.test(id)) throw new UsageError(`--id must be a parked id, got ${JSON.stringify(id.slice(0, 80))}`);
    return sub === 'list' ? { command: 'parked-list', all: values.all ?? false } : { command: 'parked-replay', ids: values.id };
  }
  if (command !== 'republish' || extra.length)
    throw new UsageError(command ? `unknown command ${JSON.stringify(command)}` : 'no command given');
  if (values.tenant !== undefined && !/^[A-Za-z0-9_.:-]{1,64}$/.test(values.tenant)) {
    throw new UsageError(`--tenant must be a tenant id (letters, digits, _ . : -), got ${JSON.stringify(values.tenant.slice(0, 80))}`);
  }
  return { command, tenantId: values.tenant, announceKeys: values['announce-keys'] ?? false, force: values.force ?? false };
}

/** `parked list` prints one JSON line per row; `parked replay` a summary (exit 1 if any stays parked). */
async function parkedCommand(cmd: Extract<Command, { command: 'parked-list' | 'parked-replay' }>, databaseUrl: string, log: Logger) {
  const sql = createSql(databaseUrl, 2);
  try {
    if (cmd.command === 'parked-list') {
      const rows = await listParked(sql, { all: cmd.all });
      // Only the rows on stdout, so it pipes into jq; nothing parked prints nothing.
      for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
      return 0;
    }
    const res = await replayParked(sql, cmd.ids);
    for (const f of res.failed) log.error(f, 'parked usage still refused; left parked');
    log[res.failed.length ? 'error' : 'info']({ replayed: res.replayed.length, failed: res.failed.length }, 'parked usage replayed');
    return res.failed.length ? 1 : 0;
  } catch (err) {
    log.error({ err: (err as Error).message }, 'parked command failed');
    return 1;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function main(): Promise<number> {
  let cmd: Command;
  let config: WorkerCliConfig;
  try {
    cmd = parseCommand(process.argv.slice(2));
    if (cmd.command === 'help') {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    config = loadWorkerCliConfig();
  } catch (err) {
    if (err instanceof UsageError || err instanceof EnvError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
      return 2;
    }
    throw err;
  }

  const log = createLogger('tollgate-cli', config.logLevel);
  if (cmd.command === 'parked-list' || cmd.command === 'parked-replay') return parkedCommand(cmd, config.databaseUrl, log);
  const keyspace = createKeyspace(config.redisPrefix);
  const db = createPrismaClient(config.databaseUrl, { max: 4 });
  const redis = new Redis(config.redisUrl, {
    lazyConnect: true,
    maxRetriesPerRequest: 2,
    connectTimeout: 5000,
    retryStrategy: (n) => (n > 3 ? null : 200 * n),
  });
  redis.on('error', () => undefined); // reported below, once, with context
  try {
    try {
      await db.$queryRaw`SELECT 1`;
    } catch (err) {
      log.error({ err: (err as Error).message }, 'cannot reach PostgreSQL (DATABASE_URL)');
      return 1;
    }
    try {
      await redis.connect();
    } catch (err) {
      log.error({ err: (err as Error).message }, 'cannot reach Redis (REDIS_URL)');
      return 1;
    }
    // A full rebuild restores quota counters from the ledger first, as the restore watch does.
    if (!cmd.tenantId) log.info(await restoreQuotaCounters({ db, redis, keyspace }), 'quota counters rebuilt from the ledger');
    const res = await republishAll({
      db,
      redis,
      keyspace,
      tenantId: cmd.tenantId,
      announceKeys: cmd.announceKeys,
      force: cmd.force,
      logger: log,
    });
    const failed = res.failedTenants.length + res.failedKeys.length;
    // A complete rebuild tells the workers' restore watch there is nothing to redo.
    if (!failed && !cmd.tenantId) await markPublished(redis, keyspace, res);
    if (cmd.tenantId && res.tenants === 0)
      log.warn({ tenantId: cmd.tenantId }, 'no such tenant in PostgreSQL; removed it from Redis if it was there');
    log[failed ? 'error' : 'info']({ prefix: keyspace.prefix, ...res }, failed ? 'republish finished with failures' : 'republish done');
    return failed ? 1 : 0;
  } catch (err) {
    log.error({ err: (err as Error).message }, 'republish failed');
    return 1;
  } finally {
    redis.disconnect();
    await db.$disconnect();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`unexpected failure: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
