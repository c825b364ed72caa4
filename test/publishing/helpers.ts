import { randomBytes } from 'node:crypto';
import { generateApiKey, hashApiKey, displayPrefix } from '@tollgate/keys';
import { createPrismaClient, newId, type Db } from '@tollgate/db';
import { cloneRunDatabase } from '../harness';

/**
 * A database of this test file's own. The relay drains the whole outbox table, so sharing the
 * run's database would let these tests publish (and mark done) other suites' rows.
 */
export async function createIsolatedDatabase(): Promise<{ url: string; db: Db; drop(): Promise<void> }> {
  const own = await cloneRunDatabase('pub');
  const db = createPrismaClient(own.url, { max: 6 });
  return {
    url: own.url,
    db,
    async drop() {
      await db.$disconnect();
      await own.drop();
    },
  };
}

export type Fixture = Awaited<ReturnType<typeof createFixture>>;

/** A tenant with one API (route + target), a free and a pro plan, a consumer on free and one key. */
export async function createFixture(db: Db, opts: { upstream?: string } = {}) {
  const tenantId = newId('tenant');
  const slug = `t${randomBytes(5).toString('hex')}`;
  const apiId = newId('api');
  const freeId = newId('plan');
  const proId = newId('plan');
  const consumerId = newId('consumer');
  const subscriptionId = newId('subscription');
  const keyId = newId('key');
  const secret = generateApiKey('test');
  const hash = hashApiKey(secret);
  const periodStart = new Date('2026-11-01T00:00:00Z');
  const periodEnd = new Date('2026-12-01T00:00:00Z');
  await db.tenant.create({ data: { id: tenantId, slug, name: `Tenant ${slug}`, customDomains: ['API.Example.test'] } });
  await db.api.create({
    data: {
      id: apiId,
      tenantId,
      name: 'Echo',
      slug: 'echo',
      basePath: '/echo',
      routes: { create: [{ id: newId('route'), path: '/*', methods: ['get', 'POST'] }] },
      targets: {
        create: [
          { id: newId('target'), url: opts.upstream ?? 'http://127.0.0.1:4000', healthCheckPath: '/get' },
          { id: newId('target'), url: 'http://127.0.0.1:4001', enabled: false },
        ],
      },
    },
  });
  await db.plan.create({
    data: { id: freeId, tenantId, name: 'Free', slug: 'free', rateLimit: 10, monthlyQuota: 1000, planApis: { create: [{ apiId }] } },
  });
  await db.plan.create({
    data: {
      id: proId,
      tenantId,
      name: 'Pro',
      slug: 'pro',
      rateLimit: 100,
      rateAlgorithm: 'GCRA',
      monthlyQuota: 100_000,
      quotaMode: 'OVERAGE',
      flatFeeMinor: 2900,
      planApis: { create: [{ apiId }] },
    },
  });
  await db.consumer.create({ data: { id: consumerId, tenantId, email: `dev@${slug}.test`, name: 'Dev' } });
  await db.subscription.create({
    data: { id: subscriptionId, tenantId, consumerId, planId: freeId, currentPeriodStart: periodStart, currentPeriodEnd: periodEnd },
  });
  await db.apiKey.create({
    data: { id: keyId, tenantId, consumerId, subscriptionId, hash, prefix: displayPrefix(secret), env: 'test' },
  });
  return { tenantId, slug, apiId, freeId, proId, consumerId, subscriptionId, keyId, secret, hash, periodStart, periodEnd };
}

/** Resolves with the first message on `channel` that `match` accepts, and when (performance.now()) it arrived. */
export function nextMessage(
  sub: import('ioredis').Redis,
  channel: string,
  match: (msg: Record<string, unknown>) => boolean,
  timeoutMs = 5000,
) {
  return new Promise<{ msg: Record<string, unknown>; at: number }>((resolve, reject) => {
    const timer = setTimeout(() => {
      sub.off('message', onMessage);
      reject(new Error(`no matching message on ${channel} within ${timeoutMs} ms`));
    }, timeoutMs);
    function onMessage(ch: string, raw: string) {
      if (ch !== channel) return;
      const msg = JSON.parse(raw) as Record<string, unknown>;
      if (!match(msg)) return;
      clearTimeout(timer);
      sub.off('message', onMessage);
      resolve({ msg, at: performance.now() });
    }
    sub.on('message', onMessage);
  });
}
