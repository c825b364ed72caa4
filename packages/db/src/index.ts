export { createPrismaClient, type Db } from './client';
export { newId, type IdPrefix } from './ids';
export * from './generated/prisma/client';
export * from './publishing/index';
