import { connect } from 'node:net';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import type { ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyspace, type Keyspace } from '@tollgate/policy';
import type { UsageEvent } from '@tollgate/usage';
import { createGateway, type Gateway } from '../../apps/gateway/src/server';
import { testRedis, uniquePrefix } from '../harness';
import {
  issueKey,
  makeApi,
  makePlan,
  makeSnapshot,
  publishSnapshot,
  startUpstream,
  type IssuedKey,
  type Upstream,
  testGatewayConfig,
  queuedUsageEvents,
} from './fixtures';

// How the gateway relays an upstream response to its client: backpressure both ways, early
// exits on either side, the route's total deadline, 1xx, HEAD, and headers it owns.

const BIG = 16 * 1024 * 1024;
const CHUNK = 64 * 1024;
let redis: Redis;
let ks: Keyspace;
let gw: Gateway;
let port: number;
let host: string;
let key: IssuedKey;
const ups: Upstream[] = [];

/** Byte i of the big body: a pattern that shows reordered or lost chunks. */
const patternChunk = (offset: number) => {
  const b = Buffer.allocUnsafe(CHUNK);
  for (let i = 0; i < CHUNK; i++) b[i] = (offset + i) % 251;
  return b;
};

/** Upstream side of the slow-client test: resolves when the upstream's write first returns false. */
let upstreamBlocked: Promise<void> = Promise.resolve();
let markBlocked: () => void = () => undefined;
/** Resolves with the upstream response of the client-leaves test once it closes. */
let abandonedClosed: Promise<boolean> = Promise.resolve(false);

/** Resolves with whether the stalled upstream response was cut off from the gateway's side. */
let stalledClosed: Promise<boolean> = Promise.resolve(false);

let lateArrived: (requestId: string) => void = () => undefined;
let lateGo: Promise<void> = Promise.resolve();
let lateClosed: (aborted: boolean) => void = () => undefined;

async function writeBig(res: ServerResponse): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(BIG) });
  for (let off = 0; off < BIG; off += CHUNK) {
    if (!res.write(patternChunk(off))) {
      markBlocked();
      await once(res, 'drain');
    }
  }
  res.end();
}

beforeAll(async () => {
  redis = testRedis();
  const prefix = uniquePrefix('relay');
  ks = createKeyspace(prefix);
  const up = await startUpstream((req, res) => {
    switch (req.url) {
      case '/big':
        void writeBig(res);
        return;
      case '/forever':
        // Streams until someone stops it; records whether it was stopped from the gateway's side.
        res.writeHead(200, { 'content-type': 'text/plain' });
        abandonedClosed = new Promise((resolve) => res.once('close', () => resolve(!res.writableFinished)));
        res.write('x'.repeat(1024));
        return;
      case '/reset':
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100000' });
        res.write('y'.repeat(1000), () => res.socket?.destroy());
        return;
      case '/trickle': {
        // Never idle long enough for the idle timeout, but longer in total than the route allows.
        res.writeHead(200, { 'content-type': 'text/plain' });
        const t = setInterval(() => res.write('.'), 20);
        res.once('close', () => clearInterval(t));
        return;
      }
      case '/stall':
        // Headers and a first part, then silence (the route itself would allow 10 s).
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('s'.repeat(100));
        stalledClosed = new Promise((resolve) => res.once('close', () => resolve(!res.writableFinished)));
        return;
      case '/late':
        // Answers only once the test says so, then streams until stopped.
        lateArrived(String(req.headers['x-tollgate-request-id']));
        void lateGo.then(() => {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.once('close', () => lateClosed(!res.writableFinished));
          res.write('z'.repeat(1024));
        });
        return;
      case '/hints':
        res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('after hints');
        return;
      default:
        res.writeHead(200, {
          'content-type': 'text/plain',
          'x-request-id': 'from-upstream',
          'x-ratelimit-remaining': '999999',
          'set-cookie': ['a=1', 'b=2'],
          'content-length': '5',
        });
        res.end('hello');
    }
  });
  ups.push(up);
  const api = makeApi(up.url, {
    basePath: '/r',
    routes: [
      { id: 'rte_trickle', methods: ['GET'], path: '/trickle', timeoutMs: 400, cacheTtlSeconds: 0, transform: null, rateLimit: null },
      { id: 'rte_all', methods: [], path: '/*', timeoutMs: null, cacheTtlSeconds: 0, transform: null, rateLimit: null },
    ],
  });
  // The same upstream behind an API whose read timeout (headers, then each gap in the body) is short.
  const quick = makeApi(up.url, { slug: 'quick', basePath: '/q', timeouts: { connectMs: 1000, headersMs: 300, requestMs: 10_000 } });
  const plan = makePlan([api.id, quick.id]);
  const snap = makeSnapshot([api, quick], [plan]);
  host = `${snap.tenantSlug}.localhost`;
  await publishSnapshot(redis, ks, snap);
  key = await issueKey(redis, ks, snap.tenantId, plan);
  gw = await createGateway(testGatewayConfig(prefix));
  ({ port } = await gw.listen());
});

afterAll(async () => {
  await gw?.shutdown();
  await Promise.all(ups.map((u) => u.close()));
  await redis?.quit();
});

/** The usage event the gateway queued for one request. */
const usageEvent = async (requestId: string): Promise<UsageEvent> => (await queuedUsageEvents(redis, ks, [requestId]))[0]!;

const get = (p: string, method: 'GET' | 'HEAD' = 'GET') =>
  request(`http://127.0.0.1:${port}${p}`, { method, headers: { host, 'x-api-key': key.key } });

describe('relaying the upstream response', () => {
  it('holds the upstream back while the client reads slowly, and delivers every byte in order', async () => {
    upstreamBlocked = new Promise((resolve) => (markBlocked = resolve));
    const res = await get('/r/big');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-length']).toBe(String(BIG));
    const it = res.body[Symbol.asyncIterator]();
    const first = (await it.next()).value as Buffer;
    // The client stops reading here; the upstream must feel it (its socket fills up) ...
    await upstreamBlocked;
    // ... and then gets everything once the client reads on.
    let offset = 0;
    let intact = true;
    const check = (c: Buffer) => {
      for (let i = 0; i < c.length; i++) if (c[i] !== (offset + i) % 251) intact = false;
      offset += c.length;
    };
    check(Buffer.from(first));
    for (let r = await it.next(); !r.done; r = await it.next()) check(Buffer.from(r.value as Buffer));
    expect(offset).toBe(BIG);
    expect(intact).toBe(true);
  });

  it('does not count a client that stops reading against the upstream read timeout', async () => {
    upstreamBlocked = new Promise((resolve) => (markBlocked = resolve));
    // /q has a 300 ms read timeout; this client stops reading for twice that once the upstream
    // is held back. The silence is the gateway's doing (backpressure), not the upstream's.
    const res = await get('/q/big');
    expect(res.statusCode).toBe(200);
    const it = res.body[Symbol.asyncIterator]();
    let received = ((await it.next()).value as Buffer).length;
    await upstreamBlocked;
    await delay(600); // the slow client under test: it reads nothing for 600 ms
    for (let r = await it.next(); !r.done; r = await it.next()) received += (r.value as Buffer).length;
    expect(received).toBe(BIG);
  });

  it('aborts the upstream request when the client leaves mid-response', async () => {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write(`GET /r/forever HTTP/1.1\r\nHost: ${host}\r\nX-API-Key: ${key.key}\r\n\r\n`);
    const [head] = (await once(socket, 'data')) as [Buffer];
    expect(head.toString('latin1')).toMatch(/^HTTP\/1\.1 200 /);
    const requestId = /x-request-id: (\S+)/i.exec(head.toString('latin1'))![1]!;
    socket.destroy();
    expect(await abandonedClosed).toBe(true);
    const event = await usageEvent(requestId);
    expect(event).toMatchObject({ status: 499, rejected: null, answeredBy: 'upstream' });
    expect(event.bytesOut).toBeGreaterThan(0);
    // The gateway carries on.
    const after = await get('/r/plain');
    expect(after.statusCode).toBe(200);
    expect(await after.body.text()).toBe('hello');
  });

  it('drops the upstream response when the client left before it arrived', async () => {
    const arrived = new Promise<string>((resolve) => (lateArrived = resolve));
    let go: () => void = () => undefined;
    lateGo = new Promise<void>((resolve) => (go = resolve));
    const closed = new Promise<boolean>((resolve) => (lateClosed = resolve));
    const server = gw.apps[0]!.server;
    const accepted = once(server, 'connection') as Promise<[import('node:net').Socket]>;
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    const [serverSide] = await accepted;
    socket.write(`GET /r/late HTTP/1.1\r\nHost: ${host}\r\nX-API-Key: ${key.key}\r\n\r\n`);
    const requestId = await arrived;
    socket.destroy();
    await once(serverSide, 'close');
    go();
    // The upstream's open-ended response is cut off rather than streamed into a dead socket.
    expect(await closed).toBe(true);
    // The call counted against the key's limits, so it is metered too: as 499, nothing sent.
    expect(await usageEvent(requestId)).toMatchObject({ status: 499, bytesOut: 0, rejected: null });
    const after = await get('/r/plain');
    expect(after.statusCode).toBe(200);
    await after.body.dump();
  });

  it('cuts the client connection when the upstream resets mid-body instead of ending it cleanly', async () => {
    const res = await get('/r/reset');
    expect(res.statusCode).toBe(200);
    await expect(res.body.text()).rejects.toThrow();
    // Metered as the gateway saw it: a bad gateway, with the bytes that did get through.
    const event = await usageEvent(res.headers['x-request-id'] as string);
    expect(event).toMatchObject({ status: 502, rejected: null, answeredBy: 'gateway' });
    expect(event.bytesOut).toBeGreaterThan(0);
    expect(event.bytesOut).toBeLessThan(100_000);
    const after = await get('/r/plain');
    expect(after.statusCode).toBe(200);
    await after.body.dump();
  });

  it("ends a streamed body at the route's total deadline", async () => {
    const res = await get('/r/trickle');
    expect(res.statusCode).toBe(200);
    let received = 0;
    const done = (async () => {
      for await (const c of res.body) received += (c as Buffer).length;
    })();
    await expect(done).rejects.toThrow();
    // 400 ms at one byte per 20 ms: nowhere near what an unbounded stream would have sent.
    expect(received).toBeGreaterThan(0);
    expect(received).toBeLessThan(100);
    const event = await usageEvent(res.headers['x-request-id'] as string);
    expect(event.status).toBe(504);
    expect(event.bytesOut).toBeGreaterThanOrEqual(received);
    expect(event.bytesOut).toBeLessThan(100);
  });

  it('cuts a body that goes silent for longer than the read timeout, well before the route deadline', async () => {
    const res = await get('/q/stall');
    expect(res.statusCode).toBe(200);
    await expect(res.body.text()).rejects.toThrow();
    expect(await stalledClosed).toBe(true);
    const event = await usageEvent(res.headers['x-request-id'] as string);
    expect(event).toMatchObject({ status: 504, bytesOut: 100, rejected: null, answeredBy: 'gateway' });
    expect(event.latencyMs).toBeLessThan(5000);
  });

  it('passes over 1xx responses to the final one', async () => {
    const res = await get('/r/hints');
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('after hints');
  });

  it('answers HEAD with the headers only', async () => {
    const res = await get('/r/plain', 'HEAD');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-length']).toBe('5');
    expect(await res.body.text()).toBe('');
  });

  it("replaces the upstream's request id and rate-limit headers with its own, and keeps repeated headers", async () => {
    const res = await get('/r/plain');
    expect(await res.body.text()).toBe('hello');
    const id = res.headers['x-request-id'];
    expect(typeof id).toBe('string');
    expect(id).not.toBe('from-upstream');
    expect(res.headers['x-ratelimit-remaining']).not.toBe('999999');
    expect(typeof res.headers['x-ratelimit-remaining']).toBe('string');
    expect(res.headers['set-cookie']).toEqual(['a=1', 'b=2']);
  });
});
