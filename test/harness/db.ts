import { inject } from 'vitest';
import { createPrismaClient, type Db } from '@tollgate/db';

/** A Prisma client on this run's database; close it in afterAll. */
export function testDb(): Db {
  return createPrismaClient(inject('databaseUrl'), { max: 4 });
}
