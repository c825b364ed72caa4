import { z } from 'zod';
import { queryTopUsage, queryUsage, RANGES, type RangeName } from '../services/usage';
import type { ServiceContext } from '../services/context';
import { Id, parseInput } from '../services/validation';
import { getMyKey } from './keys';
import type { DeveloperContext } from './context';

export const MyUsageQuery = z
  .object({
    range: z.enum(Object.keys(RANGES) as [RangeName, ...RangeName[]], { error: 'must be one of 1h, 6h, 24h, 7d, 30d, 90d' }).default('24h'),
    keyId: Id('key').optional(),
    apiId: Id('api').optional(),
  })
  .strict();

/**
 * The console's usage queries, read-only, pinned to this developer: the consumer filter is set
 * here and can't come from the request, and a key filter must name one of the developer's keys.
 */
function readContext(dev: DeveloperContext): ServiceContext {
  return { db: dev.db, tenantId: dev.tenant.id, actor: { type: 'user', id: dev.consumerId, label: 'portal developer' }, role: 'VIEWER' };
}

export async function myUsage(dev: DeveloperContext, input: unknown) {
  const q = parseInput(MyUsageQuery, input ?? {});
  if (q.keyId) await getMyKey(dev, q.keyId);
  return queryUsage(readContext(dev), { ...q, consumerId: dev.consumerId });
}

/** Requests and errors per key of this developer over the range. */
export async function myKeyUsage(dev: DeveloperContext, input: unknown) {
  const q = parseInput(MyUsageQuery.omit({ keyId: true }), input ?? {});
  const top = await queryTopUsage(readContext(dev), { ...q, consumerId: dev.consumerId }, 100);
  return top.keys;
}
