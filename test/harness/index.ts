import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { inject } from 'vitest';
import pg from 'pg';
import { Redis } from 'ioredis';
import { createKeyspace } from '@tollgate/policy';

/** This run's services, as made by global-setup.ts. */
export function testEnv() {
  return { databaseUrl: inject('databaseUrl'), redisUrl: inject('redisUrl'), redisPrefix: inject('redisPrefix') };
}

/** The Chromium for browser suites: what `npm test` found or installed (CHROMIUM_PATH). */
export function chromiumPath(): string {
  const found = inject('chromiumPath');
  if (!found)
    throw new Error(
      "no Chromium for the browser tests: install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH; `npm test` does this for you",
    );
  return found;
}

/** A Redis key prefix of its own for one test file or case, inside this run's prefix. */
export function uniquePrefix(label = 't'): string {
  return `${inject('redisPrefix')}_${label}_${randomBytes(3).toString('hex')}`;
}

export function testKeyspace(label?: string) {
  return createKeyspace(uniquePrefix(label));
}

export function testRedis(): Redis {
  return new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
}

/** Resolves when `check` returns a truthy value; polls an observable state, never a fixed sleep. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  { timeoutMs = 5000, intervalMs = 10, what = 'condition' } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * A migrated database of the caller's own, copied from the run's template (no migrations to
 * replay), for suites that must not see or touch other files' rows. `drop` removes it.
 */
export async function cloneRunDatabase(label: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const runUrl = new URL(inject('databaseUrl'));
  const name = `${runUrl.pathname.slice(1)}_${label}_${randomBytes(3).toString('hex')}`;
  const adminUrl = new URL(runUrl);
  adminUrl.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: adminUrl.toString() });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}" TEMPLATE "${inject('templateDatabase')}"`);
  const url = new URL(runUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.end();
    },
  };
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

const pickedPorts = new Set<number>();
/**
 * A free port for a process a test starts, below the kernel's ephemeral range (32768-60999 on
 * Linux). A port from listen(0) is in that range, and in a busy run an outgoing connection
 * elsewhere took one as its source port between the pick and the child binding it.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (!pickedPorts.has(port) && (await portIsFree(port))) {
      pickedPorts.add(port);
      return port;
    }
  }
}

/**
 * The environment every child process of a test starts from: PATH, and the clock shift of
 * `npm test -- --at=…` (LD_PRELOAD + TG_CLOCK_OFFSET_MS), so a worker or gateway a test spawns
 * lives at the same instant as the test, PostgreSQL and Redis.
 */
export function baseChildEnv(): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '' };
  for (const k of ['LD_PRELOAD', 'TG_CLOCK_OFFSET_MS']) if (process.env[k]) env[k] = process.env[k]!;
  return env;
}
