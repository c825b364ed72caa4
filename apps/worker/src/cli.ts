// Operator commands. `republish` rebuilds Redis from PostgreSQL (a fresh or restored Redis,
// disaster recovery): every tenant's snapshot and every key record, or one tenant's with --tenant.
// Exit codes: 0 done, 1 failed (or partly failed), 2 bad usage or configuration.
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { commonEnv, createLogger, EnvError, parseEnv } from '@tollgate/config';
import { createPrismaClient, markPublished, republishAll } from '@tollgate/db';
import { createKeyspace } from '@tollgate/policy';

const USAGE = `usage: tsx apps/worker/src/cli.ts republish [--tenant <tenantId>] [--announce-keys]
  env: DATABASE_URL (required), REDIS_URL, REDIS_PREFIX, LOG_LEVEL`;

const cliEnv = {
  ...commonEnv,
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'expected a postgresql:// URL'),
};

class UsageError extends Error {}

function parseCommand(argv: string[]) {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { tenant: { type: 'string' }, 'announce-keys': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) return { command: 'help' as const };
  const [command, ...extra] = positionals;
  if (command !== 'republish' || extra.length)
    throw new UsageError(command ? `unknown command ${JSON.stringify(command)}` : 'no command given');
  if (values.tenant !== undefined && !/^[A-Za-z0-9_.:-]{1,64}$/.test(values.tenant)) {
    throw new UsageError(`--tenant must be a tenant id (letters, digits, _ . : -), got ${JSON.stringify(values.tenant.slice(0, 80))}`);
  }
  return { command, tenantId: values.tenant, announceKeys: values['announce-keys'] ?? false };
}

async function main(): Promise<number> {
  let cmd: ReturnType<typeof parseCommand>;
  let env: z.infer<z.ZodObject<typeof cliEnv>>;
  try {
    cmd = parseCommand(process.argv.slice(2));
    if (cmd.command === 'help') {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    env = parseEnv(cliEnv);
  } catch (err) {
    if (err instanceof UsageError || err instanceof EnvError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
      return 2;
    }
    throw err;
  }

  const log = createLogger('tollgate-cli', env.LOG_LEVEL);
  const keyspace = createKeyspace(env.REDIS_PREFIX);
  const db = createPrismaClient(env.DATABASE_URL, { max: 4 });
  const redis = new Redis(env.REDIS_URL, {
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
    const res = await republishAll({ db, redis, keyspace, tenantId: cmd.tenantId, announceKeys: cmd.announceKeys, logger: log });
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
