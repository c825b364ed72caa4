import { mkdtempSync } from 'node:fs';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyspace, QUEUES, type Keyspace, type PlanPolicy } from '@tollgate/policy';
import type { UsageBatch, UsageEvent } from '@tollgate/usage';
import { createGateway, type Gateway } from '../../apps/gateway/src/server';
import { testEnv, testRedis, uniquePrefix, waitFor } from '../harness';
import {
  issueKey,
  makeApi,
  makePlan,
  makeSnapshot,
  publishSnapshot,
  rawRequest,
  revokeKey,
  spawnGateway,
  startUpstream,
  statusOf,
  testGatewayConfig,
  type IssuedKey,
  type Upstream,
} from './fixtures';
import { encodeFrame, startWsUpstream, wsConnect, type WsUpstream } from './ws-peers';

/**
 * WebSocket proxying (docs/adr/0026): the handshake goes through the same stages as any call,
 * the connection is relayed both ways, metered when it closes (and in between), closed when its
 * key is revoked, and hostile frames end it.
 */
let redis: Redis;
let ks: Keyspace;
let gw: Gateway;
let port: number;
let host: string;
let wsUp: WsUpstream;
let httpUp: Upstream;
let plan: PlanPolicy;
let tenantId: string;
let key: IssuedKey;
let tinyPlan: PlanPolicy;
let prefix: string;

const MAX_PER_KEY = 2;
const MAX_FRAME = 4096;

async function usageEvents(filter: (e: UsageEvent) => boolean, until: (found: UsageEvent[]) => boolean): Promise<UsageEvent[]> {
  const queue = new Queue(QUEUES.usage, { connection: redis, prefix: ks.bullPrefix });
  try {
    return await waitFor(
      async () => {
        const jobs = await queue.getJobs(['waiting', 'prioritized', 'delayed', 'active', 'completed']);
        const found = jobs.flatMap((j) => (j.data as UsageBatch).events).filter(filter);
        return until(found) ? found : null;
      },
      { timeoutMs: 5000, what: 'usage events' },
    );
  } finally {
    await queue.close();
  }
}

const open = (k: IssuedKey | null, path = '/ws/chat', extra: Record<string, string> = {}) =>
  wsConnect(port, path, { Host: host, ...(k ? { 'X-Api-Key': k.key } : {}), ...extra });

beforeAll(async () => {
  redis = testRedis();
  prefix = uniquePrefix('ws');
  ks = createKeyspace(prefix);
  wsUp = await startWsUpstream();
  httpUp = await startUpstream();
  const wsApi = makeApi(`http://127.0.0.1:${wsUp.port}`, { basePath: '/ws', slug: 'ws' });
  const httpApi = makeApi(httpUp.url);
  plan = makePlan([wsApi.id, httpApi.id], { rateLimit: { limit: 1000, windowSeconds: 60, algorithm: 'sliding_window' } });
  tinyPlan = makePlan([wsApi.id], { slug: 'tiny', rateLimit: { limit: 2, windowSeconds: 60, algorithm: 'sliding_window' } });
  const snap = makeSnapshot([wsApi, httpApi], [plan, tinyPlan]);
  tenantId = snap.tenantId;
  host = `${snap.tenantSlug}.localhost`;
  await publishSnapshot(redis, ks, snap);
  key = await issueKey(redis, ks, tenantId, plan);
  gw = await createGateway(
    testGatewayConfig(prefix, {
      GATEWAY_WS_MAX_CONNECTIONS_PER_KEY: String(MAX_PER_KEY),
      GATEWAY_WS_MAX_FRAME_BYTES: String(MAX_FRAME),
      GATEWAY_WS_USAGE_INTERVAL_MS: '150',
    }),
  );
  ({ port } = await gw.listen());
});

afterAll(async () => {
  await gw?.shutdown();
  await wsUp?.close();
  await httpUp?.close();
  await redis?.quit();
});

describe('WebSocket handshake', () => {
  it('refuses a handshake without a key with 401 and no upgrade; the upstream never sees it', async () => {
    const before = wsUp.handshakes.length;
    const c = await open(null);
    expect(c.status).toBe(401);
    expect(c.headers.upgrade).toBeUndefined();
    await c.closed;
    expect(wsUp.handshakes.length).toBe(before);
  });

  it('with a key: 101, the identity upstream, no key upstream, messages echoed both ways', async () => {
    const c = await open(key);
    expect(c.status).toBe(101);
    expect(c.headers['x-ratelimit-limit']).toBe('1000');
    expect(c.headers['x-request-id']).toBeTruthy();
    const seen = wsUp.handshakes.at(-1)!;
    expect(seen['x-tollgate-consumer']).toBe(key.record.consumerId);
    expect(seen['x-api-key']).toBeUndefined();
    expect(seen.upgrade).toBe('websocket');
    expect(await c.nextMessage()).toBe('welcome');
    c.send('ping one');
    expect(await c.nextMessage()).toBe('ping one');
    c.close(1000);
    expect(await c.closed).toBe(1000);
  });

  it('refuses a handshake past the per-key connection limit with 429, and admits again once one closes', async () => {
    const k = await issueKey(redis, ks, tenantId, plan);
    const held = [await open(k), await open(k)];
    expect(held.map((c) => c.status)).toEqual([101, 101]);
    const third = await open(k);
    expect(third.status).toBe(429);
    expect(third.headers.upgrade).toBeUndefined();
    expect(third.headers['retry-after']).toBe('1');
    // Another key is not affected.
    const other = await open(key);
    expect(other.status).toBe(101);
    other.close();
    held[0]!.close();
    await held[0]!.closed;
    const again = await waitFor(
      async () => {
        const c = await open(k);
        if (c.status === 101) return c;
        await c.closed;
        return null;
      },
      { timeoutMs: 3000, what: 'a slot freed by the closed connection' },
    );
    expect(again.status).toBe(101);
    again.close();
    held[1]!.close();
    await Promise.all([again.closed, held[1]!.closed, other.closed]);
  });

  it('counts each handshake against the plan limit: past it the handshake is 429 with the limit headers', async () => {
    const k = await issueKey(redis, ks, tenantId, tinyPlan);
    for (let i = 0; i < 2; i++) {
      const c = await open(k);
      expect(c.status).toBe(101);
      expect(c.headers['x-ratelimit-remaining']).toBe(String(1 - i));
      c.close();
      await c.closed;
    }
    const refused = await open(k);
    expect(refused.status).toBe(429);
    expect(refused.headers['x-ratelimit-limit']).toBe('2');
    expect(refused.headers.upgrade).toBeUndefined();
  });

  it('serves a non-WebSocket Upgrade as a plain request with Upgrade stripped, as before', async () => {
    const raw = await rawRequest(
      port,
      `GET /echo/h2c-upgrade HTTP/1.1\r\nHost: ${host}\r\nX-Api-Key: ${key.key}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`,
    );
    expect(statusOf(raw)).toBe(200);
    const seen = httpUp.requests.find((r) => r.url === '/h2c-upgrade')!;
    expect(seen.headers.upgrade).toBeUndefined();
    expect(seen.headers['http2-settings']).toBeUndefined();
  });
});

describe('open WebSocket connections', () => {
  it('closes a revoked key’s open connection with 1008 within the revocation time', async () => {
    const k = await issueKey(redis, ks, tenantId, plan);
    const c = await open(k);
    expect(c.status).toBe(101);
    expect(await c.nextMessage()).toBe('welcome');
    const t0 = Date.now();
    await revokeKey(redis, ks, k);
    expect(await c.closed).toBe(1008);
    expect(Date.now() - t0).toBeLessThan(1000);
    const after = await open(k);
    expect(after.status).toBe(401);
  });

  it('meters the handshake as one call and the connection in records that sum to its counts', async () => {
    const c = await open(key);
    expect(c.status).toBe(101);
    const id = c.headers['x-request-id']!;
    expect(await c.nextMessage()).toBe('welcome');
    for (const m of ['a', 'bb', 'ccc']) {
      c.send(m);
      expect(await c.nextMessage()).toBe(m);
    }
    // Long enough for at least one interim record (interval 150 ms) before the close.
    await waitFor(
      async () =>
        (
          await usageEvents(
            (e) => e.websocket?.connectionId === id,
            (f) => f.length > 0,
          )
        ).length > 0
          ? true
          : null,
      {
        timeoutMs: 5000,
        what: 'an interim record',
      },
    );
    c.close(1000);
    expect(await c.closed).toBe(1000);
    const records = await usageEvents(
      (e) => e.websocket?.connectionId === id,
      (f) => f.some((e) => e.websocket!.final),
    );
    const [handshake] = await usageEvents(
      (e) => e.id === id,
      (f) => f.length === 1,
    );
    expect(handshake!.status).toBe(101);
    expect(handshake!.answeredBy).toBe('upstream');
    expect(handshake!.websocket).toBeUndefined();
    const final = records.filter((e) => e.websocket!.final);
    expect(final).toHaveLength(1);
    expect(records.length).toBeGreaterThanOrEqual(2);
    const sum = (f: (e: UsageEvent) => number) => records.reduce((n, e) => n + f(e), 0);
    expect(sum((e) => e.websocket!.messagesIn)).toBe(3); // the close frame is not a message
    expect(sum((e) => e.websocket!.messagesOut)).toBe(4); // welcome + three echoes
    expect(final[0]!.websocket!.closeCode).toBe(1000);
    // Masked client frames: 6-byte headers; payloads 1+2+3, then the close frame (6 + 2).
    expect(sum((e) => e.bytesIn)).toBe(6 * 3 + 6 + 8);
    expect(sum((e) => e.bytesOut)).toBeGreaterThanOrEqual(2 + 7 + 3 * 2 + 6);
    expect(new Set(records.map((e) => e.websocket!.seq)).size).toBe(records.length);
  });
});

describe('hostile frames', () => {
  it('an unmasked client frame closes the connection with 1002 and never reaches the upstream', async () => {
    const c = await open(key);
    expect(await c.nextMessage()).toBe('welcome');
    c.socket.write(encodeFrame(1, Buffer.from('unmasked-secret'), false));
    expect(await c.closed).toBe(1002);
    expect(wsUp.received).not.toContain('unmasked-secret');
  });

  it('a frame declaring more than the size limit closes with 1009', async () => {
    const c = await open(key);
    expect(await c.nextMessage()).toBe('welcome');
    // A header claiming 2^40 bytes, masked, with only a few payload bytes behind it.
    const head = Buffer.from([0x82, 0xff, 0, 0, 0x01, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
    c.socket.write(Buffer.concat([head, Buffer.alloc(16)]));
    expect(await c.closed).toBe(1009);
  });

  it('a frame just over GATEWAY_WS_MAX_FRAME_BYTES closes with 1009; one at the limit passes', async () => {
    const c = await open(key);
    expect(await c.nextMessage()).toBe('welcome');
    c.send('x'.repeat(MAX_FRAME));
    expect((await c.nextMessage()).length).toBe(MAX_FRAME);
    c.send('x'.repeat(MAX_FRAME + 1));
    expect(await c.closed).toBe(1009);
  });

  it('a 64-bit length with the top bit set and a reserved opcode are protocol errors (1002)', async () => {
    const a = await open(key);
    expect(await a.nextMessage()).toBe('welcome');
    a.socket.write(Buffer.from([0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4]));
    expect(await a.closed).toBe(1002);
    const b = await open(key);
    expect(await b.nextMessage()).toBe('welcome');
    b.socket.write(Buffer.from([0x83, 0x80, 1, 2, 3, 4]));
    expect(await b.closed).toBe(1002);
  });
});

describe('a gateway process (main.ts)', () => {
  it('relays a WebSocket and speaks h2c when GATEWAY_H2C is on', async () => {
    const g = await spawnGateway({
      REDIS_URL: testEnv().redisUrl,
      REDIS_PREFIX: prefix,
      GATEWAY_H2C: 'true',
      GATEWAY_REDIS_TIMEOUT_MS: '2000',
      GATEWAY_SPOOL_DIR: mkdtempSync(path.join(tmpdir(), 'tg-wsproc-')),
    });
    try {
      // Serving first (policy loaded, key cached): on a loaded host the first lookup can outlast its timeout.
      await waitFor(
        async () =>
          statusOf(await rawRequest(g.port, `GET /echo/ready HTTP/1.1\r\nHost: ${host}\r\nX-Api-Key: ${key.key}\r\n\r\n`)) === 200
            ? true
            : null,
        {
          timeoutMs: 20_000,
          what: 'the gateway process serving',
        },
      );
      const c = await wsConnect(g.port, '/ws/proc', { Host: host, 'X-Api-Key': key.key });
      expect(c.status).toBe(101);
      expect(await c.nextMessage()).toBe('welcome');
      c.send('from a process');
      expect(await c.nextMessage()).toBe('from a process');
      c.close();
      expect(await c.closed).toBe(1000);
      const session = http2.connect(`http://127.0.0.1:${g.port}`);
      try {
        const status = await new Promise<number>((resolve, reject) => {
          const req = session.request({ ':path': '/echo/over-h2c', ':authority': host, 'x-api-key': key.key });
          req.on('response', (h) => resolve(Number(h[':status'])));
          req.on('error', reject);
          req.resume();
          req.end();
        });
        expect(status).toBe(200);
      } finally {
        session.close();
      }
    } finally {
      expect(await g.stop()).toBe(0);
    }
  }, 120_000);
});
