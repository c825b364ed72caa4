// `npm run db:seed`: the demo tenant a new user can call within a minute of `npm start`.
// Idempotent: every run finds what an earlier run made (by its unique names) and reuses it;
// only the upstream URL follows the environment. The demo key's secret exists only at
// creation, so it is kept in .data/demo-api-key (mode 600) and read back on later runs.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { commonEnv, EnvError, parseEnv } from '@tollgate/config';
import { createPrismaClient, enqueueKeyPublish, enqueuePolicyPublish, newId, republishAll, startOutboxRelay, type Db } from '@tollgate/db';
import { displayPrefix, generateApiKey, hashApiKey, hashPassword, parseApiKey, verifyPassword } from '@tollgate/keys';
import { createKeyspace } from '@tollgate/policy';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEMO_PASSWORD = 'tollgate-demo';
const DEMO_KEY_NAME = 'Demo key';

const seedEnv = {
  ...commonEnv,
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'expected a postgresql:// URL'),
  DEMO_UPSTREAM_URL: z.url().default('http://127.0.0.1:4000'),
  // The console's form: a URL pattern with {tenant}; a plain URL (older setups) is taken as is.
  GATEWAY_PUBLIC_URL: z
    .string()
    .refine((v) => URL.canParse(v.replaceAll('{tenant}', 'demo')), 'expected a URL, optionally with {tenant} in it')
    .optional(),
  CONSOLE_PUBLIC_URL: z.url().default('http://localhost:3000'),
  SEED_TENANT_SLUG: z
    .string()
    .regex(/^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/, 'lower-case letters, digits and inner hyphens')
    .default('demo'),
  TOLLGATE_DATA_DIR: z.string().optional(),
  DEMO_KEY_FILE: z.string().optional(),
};
type SeedEnv = z.infer<z.ZodObject<typeof seedEnv>>;

const OPENAPI = {
  openapi: '3.1.0',
  info: { title: 'Echo', version: '1.0.0', description: 'Echoes what it receives: try it with your key.' },
  paths: {
    '/get': { get: { summary: 'Echo the query, headers and origin', responses: { '200': { description: 'The echo' } } } },
    '/anything/{path}': {
      post: {
        summary: 'Echo method, path, query, headers and body',
        parameters: [{ name: 'path', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { '200': { description: 'The echo' } },
      },
    },
    '/status/{code}': {
      get: {
        summary: 'Respond with the given status',
        parameters: [{ name: 'code', in: 'path', required: true, schema: { type: 'integer', minimum: 200, maximum: 599 } }],
        responses: { default: { description: 'That status' } },
      },
    },
  },
};

function monthBounds(now: Date): { start: Date; end: Date } {
  const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const end = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
  return { start, end };
}

const displayPath = (file: string) => {
  const rel = path.relative(root, file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
};

/** The saved demo key, if the file holds a well-formed one. */
function readSavedKey(file: string): string | null {
  if (!existsSync(file)) return null;
  const parsed = parseApiKey(readFileSync(file, 'utf8').trim());
  return parsed.ok ? parsed.value.key : null;
}

async function seed(env: SeedEnv, db: Db) {
  const slug = env.SEED_TENANT_SLUG;
  const ownerEmail = `owner@${slug}.tollgate.local`;
  const devEmail = `dev@${slug}.tollgate.local`;
  const keyFile = path.resolve(root, env.DEMO_KEY_FILE ?? path.join(env.TOLLGATE_DATA_DIR ?? '.data', 'demo-api-key'));
  const savedKey = readSavedKey(keyFile);
  const existingUser = await db.user.findUnique({ where: { email: ownerEmail } });
  const existingConsumer = await db.consumer.findFirst({ where: { email: devEmail, tenant: { slug } } });
  // scrypt is slow on purpose: hash only what will be created.
  const ownerHash = existingUser ? null : await hashPassword(DEMO_PASSWORD);
  const devHash = existingConsumer ? null : await hashPassword(DEMO_PASSWORD);
  const freshKey = generateApiKey('live');

  const result = await db.$transaction(
    async (tx) => {
      let snapshotChanged = false;
      let tenant = await tx.tenant.findUnique({ where: { slug } });
      if (!tenant) {
        tenant = await tx.tenant.create({
          // The demo upstream listens on loopback.
          data: { id: newId('tenant'), slug, name: slug === 'demo' ? 'Demo' : `Demo (${slug})`, allowPrivateTargets: true },
        });
        snapshotChanged = true;
      }
      const tenantId = tenant.id;

      const user =
        existingUser ??
        (await tx.user.upsert({
          where: { email: ownerEmail },
          update: {},
          create: { id: newId('user'), email: ownerEmail, name: 'Demo Owner', passwordHash: ownerHash! },
        }));
      await tx.membership.upsert({
        where: { tenantId_userId: { tenantId, userId: user.id } },
        update: {},
        create: { id: newId('membership'), tenantId, userId: user.id, role: 'OWNER' },
      });

      let api = await tx.api.findUnique({ where: { tenantId_slug: { tenantId, slug: 'echo' } } });
      if (!api) {
        api = await tx.api.create({
          data: {
            id: newId('api'),
            tenantId,
            name: 'Echo',
            slug: 'echo',
            description: 'The demo upstream that ships with Tollgate: it echoes every request back.',
            basePath: '/echo',
            visibility: 'PUBLIC',
            authMode: 'API_KEY',
            openapi: OPENAPI,
          },
        });
        snapshotChanged = true;
      }
      if (!(await tx.route.findFirst({ where: { apiId: api.id, path: '/*' } }))) {
        await tx.route.create({ data: { id: newId('route'), apiId: api.id, name: 'everything', path: '/*', methods: [] } });
        snapshotChanged = true;
      }
      const target = await tx.upstreamTarget.findFirst({ where: { apiId: api.id }, orderBy: { createdAt: 'asc' } });
      if (!target) {
        await tx.upstreamTarget.create({ data: { id: newId('target'), apiId: api.id, url: env.DEMO_UPSTREAM_URL, healthCheckPath: '/' } });
        snapshotChanged = true;
      } else if (target.url !== env.DEMO_UPSTREAM_URL) {
        // The one value that follows the environment: the demo upstream may move between runs.
        await tx.upstreamTarget.update({ where: { id: target.id }, data: { url: env.DEMO_UPSTREAM_URL } });
        snapshotChanged = true;
      }

      const planSeeds = [
        {
          slug: 'free',
          name: 'Free',
          description: '10 requests per second, 1,000 requests a month. No card needed.',
          rateLimit: 10,
          monthlyQuota: 1000,
          quotaMode: 'HARD_CAP' as const,
        },
        {
          slug: 'pro',
          name: 'Pro',
          description: '100 requests per second, 10,000 requests included, then $0.001 per request.',
          rateLimit: 100,
          monthlyQuota: 100_000,
          quotaMode: 'OVERAGE' as const,
          flatFeeMinor: 2900,
          includedRequests: 10_000,
          overageUnitPriceMinor: 1,
          overageBlockSize: 10,
        },
      ];
      const plans: Record<string, string> = {};
      for (const p of planSeeds) {
        let plan = await tx.plan.findUnique({ where: { tenantId_slug: { tenantId, slug: p.slug } } });
        if (!plan) {
          plan = await tx.plan.create({
            data: { id: newId('plan'), tenantId, rateWindowSeconds: 1, rateAlgorithm: 'SLIDING_WINDOW', ...p },
          });
          snapshotChanged = true;
        }
        const linked = await tx.planApi.createMany({ data: [{ planId: plan.id, apiId: api.id }], skipDuplicates: true });
        if (linked.count) snapshotChanged = true;
        plans[p.slug] = plan.id;
      }

      const consumer =
        (await tx.consumer.findUnique({ where: { tenantId_email: { tenantId, email: devEmail } } })) ??
        (await tx.consumer.create({
          data: {
            id: newId('consumer'),
            tenantId,
            email: devEmail,
            name: 'Demo Developer',
            passwordHash: devHash!,
            emailVerifiedAt: new Date(),
          },
        }));
      let subscription = await tx.subscription.findFirst({
        where: { consumerId: consumer.id, status: { not: 'CANCELED' } },
        orderBy: { createdAt: 'asc' },
      });
      if (!subscription) {
        const { start, end } = monthBounds(new Date());
        subscription = await tx.subscription.create({
          data: {
            id: newId('subscription'),
            tenantId,
            consumerId: consumer.id,
            planId: plans.free!,
            currentPeriodStart: start,
            currentPeriodEnd: end,
          },
        });
      }

      // Reuse the saved key while it still names a live key of the demo developer; otherwise
      // roll: issue a new one and revoke the demo keys whose secret nobody holds any more.
      const saved = savedKey
        ? await tx.apiKey.findFirst({ where: { hash: hashApiKey(savedKey), consumerId: consumer.id, status: 'ACTIVE' } })
        : null;
      let keyCreated = false;
      let keyId: string;
      if (saved && (!saved.expiresAt || saved.expiresAt > new Date())) {
        keyId = saved.id;
      } else {
        const stale = await tx.apiKey.findMany({ where: { consumerId: consumer.id, name: DEMO_KEY_NAME, status: 'ACTIVE' } });
        keyId = newId('key');
        await tx.apiKey.create({
          data: {
            id: keyId,
            tenantId,
            consumerId: consumer.id,
            subscriptionId: subscription.id,
            name: DEMO_KEY_NAME,
            hash: hashApiKey(freshKey),
            prefix: displayPrefix(freshKey),
            env: 'live',
            rolledFromId: stale[0]?.id ?? null,
          },
        });
        for (const old of stale) {
          await tx.apiKey.update({ where: { id: old.id }, data: { status: 'REVOKED', revokedAt: new Date() } });
          await enqueueKeyPublish(tx, old.id);
        }
        await enqueueKeyPublish(tx, keyId);
        keyCreated = true;
      }

      if (snapshotChanged) await enqueuePolicyPublish(tx, tenantId);
      return { tenantId, keyId, keyCreated, reusedTenant: !snapshotChanged && !keyCreated };
    },
    { timeout: 30_000, maxWait: 10_000 },
  );

  const apiKey = result.keyCreated ? freshKey : savedKey!;
  if (result.keyCreated) {
    mkdirSync(path.dirname(keyFile), { recursive: true, mode: 0o700 });
    const tmp = `${keyFile}.${process.pid}.tmp`;
    writeFileSync(tmp, `${apiKey}\n`, { mode: 0o600 });
    renameSync(tmp, keyFile);
  }

  const passwordStillDemo = existingUser ? await verifyPassword(DEMO_PASSWORD, existingUser.passwordHash) : true;
  return { ...result, apiKey, keyFile, ownerEmail, devEmail, passwordStillDemo };
}

/** Drains the outbox once (this seed's rows and anything else pending) and republishes the tenant, so Redis is ready now. */
async function publish(env: SeedEnv, db: Db, tenantId: string) {
  const redis = new Redis(env.REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 2,
    connectTimeout: 5000,
    retryStrategy: (n) => (n > 3 ? null : 200 * n),
  });
  redis.on('error', () => undefined);
  const keyspace = createKeyspace(env.REDIS_PREFIX);
  try {
    await redis.connect();
    const relay = startOutboxRelay({ db, redis, keyspace, pollMs: 3_600_000 });
    try {
      await relay.drainOnce();
    } finally {
      await relay.stop();
    }
    return await republishAll({ db, redis, keyspace, tenantId });
  } finally {
    redis.disconnect();
  }
}

async function main(): Promise<number> {
  let env: SeedEnv;
  try {
    env = parseEnv(seedEnv);
  } catch (err) {
    if (!(err instanceof EnvError)) throw err;
    process.stderr.write(`seed: ${err.message}\n`);
    return 2;
  }
  const db = createPrismaClient(env.DATABASE_URL, { max: 4 });
  try {
    const s = await seed(env, db);
    let published = true;
    try {
      await publish(env, db, s.tenantId);
    } catch (err) {
      published = false;
      process.stderr.write(
        `seed: the data is in PostgreSQL, but publishing to Redis failed (${(err as Error).message}); the worker's relay will publish it when Redis is reachable\n`,
      );
    }
    const gateway = (env.GATEWAY_PUBLIC_URL ?? 'http://{tenant}.localhost:8080')
      .replaceAll('{tenant}', env.SEED_TENANT_SLUG)
      .replace(/\/+$/, '');
    const out = [
      '',
      `Tollgate demo ${s.reusedTenant ? 'is ready (reused the existing demo data)' : 'is seeded'}${published ? '' : ' — not yet published to Redis'}.`,
      `  Console   ${env.CONSOLE_PUBLIC_URL}   log in as ${s.ownerEmail} / ${s.passwordStillDemo ? DEMO_PASSWORD : '(password changed since seeding)'}`,
      `  Portal    developer ${s.devEmail} / ${DEMO_PASSWORD} (Free plan)`,
      `  API key   ${s.apiKey}   (${s.keyCreated ? 'new, ' : ''}saved in ${displayPath(s.keyFile)})`,
      `  Upstream  ${env.DEMO_UPSTREAM_URL}`,
      '  Call the demo API through the gateway (*.localhost resolves to this machine):',
      `  curl -H "X-API-Key: ${s.apiKey}" ${gateway}/echo/get`,
      '',
    ];
    process.stdout.write(`${out.join('\n')}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`seed failed: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await db.$disconnect();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`seed failed: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
