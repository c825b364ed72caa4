/**
 * Analytics speed: seeds 30+ days of rollups for 1,000 keys (day rows for 31 days, hour rows
 * for 7 days, minute rows for 6 hours: what the worker's compaction leaves) into a fresh
 * database, then times the analytics page's queries per range and, with a production build
 * present, the server-side render of the page itself.
 *
 *   npx tsx apps/console/scripts/bench-analytics.ts [--keys 1000] [--page]
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createPrismaClient, newId } from '@tollgate/db';
import { LATENCY_BUCKETS_MS } from '@tollgate/usage';
import { queryTopUsage, queryUsage } from '../src/server/shared/usage';
import { queryBilling } from '../src/server/console/revenue';
import { createSessionToken } from '../src/server/console/session';
import type { ServiceContext } from '../src/server/shared/context';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');
const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const KEYS = Number(arg('keys', '1000'));
const PAGE = process.argv.includes('--page');
const RUNS = 7;
const out = (s: string) => process.stdout.write(`${s}\n`);

const baseUrl = process.env.DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/postgres';
const dbName = `tg_bench_${Date.now().toString(36)}`;
const dbUrl = (() => {
  const u = new URL(baseUrl);
  u.pathname = `/${dbName}`;
  return u.toString();
})();

async function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  await new Promise<void>((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}`))));
  });
}

function median(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main() {
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${dbName}"`);
  try {
    await run(process.execPath, [path.join(root, 'scripts/db.mjs'), 'migrate', dbUrl]);
    const db = createPrismaClient(dbUrl);
    const tenantId = newId('tenant');
    const slug = `bench-${Date.now().toString(36)}`;
    const userId = newId('user');
    await db.tenant.create({ data: { id: tenantId, slug, name: 'Bench' } });
    await db.user.create({ data: { id: userId, email: `${slug}@example.com`, name: 'Bench', passwordHash: 'x' } });
    await db.membership.create({ data: { id: newId('membership'), tenantId, userId, role: 'OWNER' } });
    const apis = Array.from({ length: 5 }, () => newId('api'));
    for (const [i, id] of apis.entries()) {
      await db.api.create({ data: { id, tenantId, name: `API ${i}`, slug: `api-${i}`, basePath: `/api-${i}` } });
    }

    const seed = new pg.Client({ connectionString: dbUrl });
    await seed.connect();
    const nb = LATENCY_BUCKETS_MS.length + 1;
    const t0 = Date.now();
    // One INSERT … SELECT per granularity: keys × buckets rows with plausible counts.
    const insert = async (granularity: string, step: string, span: string) => {
      await seed.query(
        `INSERT INTO "UsageRollup" ("tenantId","granularity","bucketStart","apiId","keyId","consumerId","subscriptionId",
           "requests","status2xx","status4xx","status5xx","latencyBuckets","latencySumMs","bytesIn","bytesOut")
         SELECT $1, $2, b, ($3::text[])[1 + (k % 5)], 'key_' || lpad(k::text, 26, '0'), 'con_' || lpad((k % 200)::text, 26, '0'), '',
           100 + k % 50, 90 + k % 50, 7, 3, array_fill(0::bigint, ARRAY[${nb}]) || ARRAY[]::bigint[], 4000, 10000, 50000
         FROM generate_series(date_trunc($4, now() - $5::interval), now(), $6::interval) AS b, generate_series(1, $7) AS k`,
        [tenantId, granularity, apis, granularity, span, step, KEYS],
      );
    };
    await insert('day', '1 day', '31 days');
    await insert('hour', '1 hour', '7 days');
    await insert('minute', '1 minute', '6 hours');
    await seed.query(
      `UPDATE "UsageRollup" SET "latencyBuckets"[5] = 60, "latencyBuckets"[7] = 35, "latencyBuckets"[9] = 5 WHERE "tenantId" = $1`,
      [tenantId],
    );
    await seed.query('ANALYZE "UsageRollup"');
    const { rows } = await seed.query(`SELECT granularity, count(*)::int AS n FROM "UsageRollup" GROUP BY 1 ORDER BY 1`);
    await seed.end();
    out(
      `seeded ${rows.map((r) => `${r.n} ${r.granularity}`).join(', ')} rows for ${KEYS} keys in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );

    const ctx: ServiceContext = { db, tenantId, role: 'OWNER', actor: { type: 'user', id: userId } };
    out('\nanalytics queries (usage series + top lists + billing, in parallel as the page runs them), median of 7:');
    for (const range of ['1h', '24h', '7d', '30d', '90d'] as const) {
      const times: number[] = [];
      let total = 0;
      for (let i = 0; i < RUNS; i++) {
        const s = performance.now();
        const [u] = await Promise.all([queryUsage(ctx, { range }), queryTopUsage(ctx, { range }), queryBilling(ctx, { range })]);
        times.push(performance.now() - s);
        total = u.totals.requests;
      }
      out(`  ${range.padEnd(4)} ${median(times).toFixed(1).padStart(7)} ms   (${total.toLocaleString('en-US')} requests summed)`);
    }

    if (PAGE) {
      const appDir = path.join(root, 'apps/console');
      if (!existsSync(path.join(appDir, '.next/BUILD_ID')))
        throw new Error('no production build: run `npx next build` in apps/console first');
      const port = await new Promise<number>((resolve) => {
        const s = createServer();
        s.listen(0, '127.0.0.1', () => {
          const p = (s.address() as { port: number }).port;
          s.close(() => resolve(p));
        });
      });
      const secret = 'bench-session-secret-at-least-32-characters';
      const server = spawn(
        process.execPath,
        [path.join(root, 'node_modules/next/dist/bin/next'), 'start', '-p', String(port), '-H', '127.0.0.1'],
        {
          cwd: appDir,
          env: {
            ...process.env,
            NODE_ENV: 'production',
            DATABASE_URL: dbUrl,
            SESSION_SECRET: secret,
            CONSOLE_URL: `http://127.0.0.1:${port}`,
            LOG_LEVEL: 'warn',
          },
          stdio: 'ignore',
        },
      );
      try {
        const url = `http://127.0.0.1:${port}`;
        for (let i = 0; i < 100; i++) {
          if (
            await fetch(`${url}/login`).then(
              (r) => r.ok,
              () => false,
            )
          )
            break;
          await new Promise((r) => setTimeout(r, 200));
        }
        const cookie = `tg_session=${await createSessionToken(secret, userId)}`;
        out('\nserver-side render of /t/{tenant}/analytics (full HTML response), median of 7 after one warm-up:');
        for (const range of ['24h', '7d', '30d', '90d']) {
          const page = `${url}/t/${slug}/analytics?range=${range}`;
          await fetch(page, { headers: { cookie } }).then((r) => r.text());
          const times: number[] = [];
          let status = 0;
          for (let i = 0; i < RUNS; i++) {
            const s = performance.now();
            const r = await fetch(page, { headers: { cookie } });
            await r.text();
            status = r.status;
            times.push(performance.now() - s);
          }
          out(`  ${range.padEnd(4)} ${median(times).toFixed(1).padStart(7)} ms   HTTP ${status}`);
        }
      } finally {
        server.kill('SIGTERM');
      }
    }
    await db.$disconnect();
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    await admin.end();
  }
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
