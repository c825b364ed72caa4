import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@tollgate/config';
import { freePort, testEnv, waitFor } from '../../../test/harness';
import { createMetrics } from './metrics';
import { checkReadiness, createPostgresCheck, redisCheck } from './readiness';
import { createHttpServer } from './server';

/** A TCP server that accepts connections and never says a word: a hung or blackholed dependency. */
async function silentServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets: Socket[] = [];
  const srv: TcpServer = createTcpServer((s) => sockets.push(s));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  };
}

/** For the checks that must give up; the ones that must succeed get UP_TIMEOUT, a busy machine's PostgreSQL can be slow to accept. */
const TIMEOUT = 300;
const UP_TIMEOUT = 10_000;
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function redisAt(url: string): Redis {
  // The worker's own settings: BullMQ needs maxRetriesPerRequest null, so commands would queue.
  const r = new Redis(url, { maxRetriesPerRequest: null, retryStrategy: () => 200 });
  r.on('error', () => undefined);
  cleanups.push(() => r.disconnect());
  return r;
}

function postgresAt(url: string) {
  const pg = createPostgresCheck(url, TIMEOUT);
  cleanups.push(() => pg.close());
  return pg;
}

describe('worker readiness checks', () => {
  it('are ready when PostgreSQL and Redis answer', async () => {
    const redis = redisAt(testEnv().redisUrl);
    await waitFor(() => redis.status === 'ready', { what: 'redis connected' });
    const pg = createPostgresCheck(testEnv().databaseUrl, UP_TIMEOUT);
    cleanups.push(() => pg.close());
    const r = await checkReadiness({ postgres: pg.check, redis: redisCheck(redis) }, UP_TIMEOUT);
    expect(r).toEqual({ ready: true, checks: { postgres: 'ok', redis: 'ok' } });
  });

  it('say Redis is down at once while nothing listens on its port, instead of queueing a PING', async () => {
    const redis = redisAt(`redis://127.0.0.1:${await freePort()}`);
    const started = performance.now();
    const r = await checkReadiness({ redis: redisCheck(redis) }, 5000);
    expect(r).toEqual({ ready: false, checks: { redis: 'down' } });
    // Far below the 5 s bound: the check did not wait for the offline queue.
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('give up on a PostgreSQL that accepts the connection and never answers, within the bound', async () => {
    const hung = await silentServer();
    cleanups.push(() => hung.close());
    const pg = postgresAt(`postgresql://postgres@127.0.0.1:${hung.port}/tollgate`);
    const r = await checkReadiness({ postgres: pg.check }, TIMEOUT);
    expect(r).toEqual({ ready: false, checks: { postgres: 'timeout' } });
  });

  it('give up on a Redis that accepts the connection and never answers', async () => {
    const hung = await silentServer();
    cleanups.push(() => hung.close());
    const redis = redisAt(`redis://127.0.0.1:${hung.port}`);
    const r = await checkReadiness({ redis: redisCheck(redis) }, TIMEOUT);
    expect(r.ready).toBe(false);
    expect(['down', 'timeout']).toContain(r.checks.redis);
  });
});

describe('worker /readyz', () => {
  let server: Server;
  let base: string;
  let hung: Awaited<ReturnType<typeof silentServer>>;
  let redisDown: Redis;
  let redisUp: Redis;
  let mode: 'up' | 'down' = 'down';

  beforeAll(async () => {
    hung = await silentServer();
    redisDown = new Redis(`redis://127.0.0.1:${await freePort()}`, { maxRetriesPerRequest: null, retryStrategy: () => 200 });
    redisDown.on('error', () => undefined);
    redisUp = new Redis(testEnv().redisUrl, { maxRetriesPerRequest: null });
    const pgDown = createPostgresCheck(`postgresql://postgres@127.0.0.1:${hung.port}/tollgate`, TIMEOUT);
    const pgUp = createPostgresCheck(testEnv().databaseUrl, UP_TIMEOUT);
    server = createHttpServer({
      logger: createLogger('test', 'silent'),
      metrics: createMetrics(),
      ready: () =>
        mode === 'up'
          ? checkReadiness({ postgres: pgUp.check, redis: redisCheck(redisUp) }, UP_TIMEOUT)
          : checkReadiness({ postgres: pgDown.check, redis: redisCheck(redisDown) }, TIMEOUT),
      stripeWebhook: null,
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    afterAll(async () => {
      await new Promise<void>((r) => server.close(() => r()));
      redisDown.disconnect();
      redisUp.disconnect();
      await pgDown.close();
      await pgUp.close();
      await hung.close();
    });
  });

  it('answers a fast 503 naming each dependency that is down, with no addresses in it', async () => {
    const started = performance.now();
    const res = await fetch(`${base}/readyz`);
    const elapsed = performance.now() - started;
    expect(res.status).toBe(503);
    const body = (await res.json()) as { error: { code: string; message: string; requestId: string; checks: Record<string, string> } };
    expect(body.error.code).toBe('unavailable');
    expect(body.error.checks).toEqual({ postgres: 'timeout', redis: 'down' });
    expect(body.error.message).toBe('not ready: postgres did not answer in time; redis is unreachable');
    expect(body.error.requestId).toBeTruthy();
    expect(JSON.stringify(body)).not.toContain('127.0.0.1');
    // Bounded by the check timeout (300 ms here), not by a driver's 30 s connect timeout.
    expect(elapsed).toBeLessThan(5000);
  });

  it('answers 200 with every check ok once both answer', async () => {
    mode = 'up';
    await waitFor(() => redisUp.status === 'ready', { what: 'redis connected' });
    const res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ready', checks: { postgres: 'ok', redis: 'ok' } });
  });
});
