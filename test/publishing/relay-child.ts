// A relay in its own process, so a test can SIGSTOP/SIGKILL it at chosen moments.
// HANG_BEFORE_MARK=1 makes it stop after writing Redis and before marking rows published:
// the worst moment to die.
import { Redis } from 'ioredis';
import { createPrismaClient, startOutboxRelay } from '@tollgate/db';
import { createKeyspace } from '@tollgate/policy';

const db = createPrismaClient(process.env.DATABASE_URL!, { max: 2 });
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const hang = process.env.HANG_BEFORE_MARK === '1';
startOutboxRelay({
  db,
  databaseUrl: process.env.DATABASE_URL!,
  redis,
  keyspace: createKeyspace(process.env.REDIS_PREFIX!),
  pollMs: 200,
  beforeMark: hang
    ? async ({ claimed }) => {
        process.stdout.write(`HANG ${claimed}\n`);
        await new Promise(() => undefined);
      }
    : undefined,
});
process.stdout.write('READY\n');
