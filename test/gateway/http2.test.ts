import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyspace, type Keyspace, type PlanPolicy } from '@tollgate/policy';
import { createGateway, type Gateway } from '../../apps/gateway/src/server';
import { testRedis, uniquePrefix } from '../harness';
import {
  issueKey,
  makeApi,
  makePlan,
  makeSnapshot,
  publishSnapshot,
  startUpstream,
  testGatewayConfig,
  type IssuedKey,
  type Upstream,
} from './fixtures';
import { dataFrame, rawH2, requestHeaders } from './h2-raw';

/**
 * One table of policy cases, run over HTTP/1.1 and HTTP/2, plain and TLS: the transport must not
 * change a single decision (docs/adr/0026). Then HTTP/2 abuse, refused before it reaches an upstream.
 */
/** The gateway's time to receive a whole request (GATEWAY_REQUEST_TIMEOUT_MS), short for the slow-body case. */
const RECEIVE_TIMEOUT_MS = 3000;
const PROTOCOLS = ['h1', 'h1-tls', 'h2-tls', 'h2c'] as const;
type Protocol = (typeof PROTOCOLS)[number];
type Answer = { status: number; headers: Record<string, string | string[] | undefined>; body: string };

let redis: Redis;
let ks: Keyspace;
let gw: Gateway;
let plainGw: Gateway;
let port: number;
let tlsPort: number;
let plainOnlyPort: number;
let host: string;
let upstream: Upstream;
let key: IssuedKey;
let tinyPlan: PlanPolicy;
let tenantId: string;
const dir = mkdtempSync(path.join(tmpdir(), 'tg-h2-'));
const certFile = path.join(dir, 'cert.pem');
const keyFile = path.join(dir, 'key.pem');

async function send(
  proto: Protocol,
  p: string,
  headers: Record<string, string> = {},
  o: { host?: string; method?: string; body?: string } = {},
) {
  const authority = o.host ?? host;
  const method = o.method ?? 'GET';
  if (proto === 'h1' || proto === 'h1-tls') {
    return new Promise<Answer>((resolve, reject) => {
      const opts = { host: '127.0.0.1', method, path: p, headers: { ...headers, host: authority }, agent: false as const };
      const req =
        proto === 'h1' ? http.request({ ...opts, port }, done) : https.request({ ...opts, port: tlsPort, rejectUnauthorized: false }, done);
      function done(res: http.IncomingMessage) {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      }
      req.on('error', reject);
      req.end(o.body);
    });
  }
  const session =
    proto === 'h2c'
      ? http2.connect(`http://127.0.0.1:${port}`)
      : http2.connect(`https://127.0.0.1:${tlsPort}`, { rejectUnauthorized: false });
  try {
    return await new Promise<Answer>((resolve, reject) => {
      session.on('error', reject);
      const req = session.request({ ':method': method, ':path': p, ':authority': authority, ...headers });
      let body = '';
      let head: http2.IncomingHttpHeaders = {};
      req.setEncoding('utf8');
      req.on('response', (h) => (head = h));
      req.on('data', (c: string) => (body += c));
      req.on('end', () => resolve({ status: Number(head[':status']), headers: head as Answer['headers'], body }));
      req.on('error', reject);
      req.end(o.body);
    });
  } finally {
    session.close();
  }
}

const errorCode = (a: Answer) => (JSON.parse(a.body) as { error: { code: string } }).error.code;

beforeAll(async () => {
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=localhost'],
    {
      stdio: 'ignore',
    },
  );
  redis = testRedis();
  const prefix = uniquePrefix('h2');
  ks = createKeyspace(prefix);
  upstream = await startUpstream();
  const api = makeApi(upstream.url);
  const cached = makeApi(upstream.url, {
    basePath: '/cached',
    routes: [{ id: 'rte_cached', methods: [], path: '/*', timeoutMs: null, cacheTtlSeconds: 60, transform: null, rateLimit: null }],
  });
  const plan = makePlan([api.id, cached.id], { rateLimit: { limit: 10_000, windowSeconds: 60, algorithm: 'sliding_window' } });
  tinyPlan = makePlan([api.id], { slug: 'tiny', rateLimit: { limit: 2, windowSeconds: 60, algorithm: 'sliding_window' } });
  const snap = makeSnapshot([api, cached], [plan, tinyPlan]);
  tenantId = snap.tenantId;
  host = `${snap.tenantSlug}.localhost`;
  await publishSnapshot(redis, ks, snap);
  key = await issueKey(redis, ks, snap.tenantId, plan);
  gw = await createGateway(
    testGatewayConfig(prefix, {
      GATEWAY_TLS_PORT: '0',
      GATEWAY_TLS_CERT: certFile,
      GATEWAY_TLS_KEY: keyFile,
      GATEWAY_H2C: 'true',
      GATEWAY_REQUEST_TIMEOUT_MS: String(RECEIVE_TIMEOUT_MS),
    }),
  );
  ({ port, tlsPort } = (await gw.listen()) as { port: number; tlsPort: number });
  plainGw = await createGateway(testGatewayConfig(prefix));
  ({ port: plainOnlyPort } = await plainGw.listen());
});

afterAll(async () => {
  await gw?.shutdown();
  await plainGw?.shutdown();
  await upstream?.close();
  await redis?.quit();
});

describe.each(PROTOCOLS)('the same policy over %s', (proto) => {
  it('refuses a call without a key with 401, and the upstream never sees it', async () => {
    const before = upstream.requests.length;
    const res = await send(proto, `/echo/nokey-${proto}`);
    expect(res.status).toBe(401);
    expect(errorCode(res)).toBe('unauthorized');
    expect(res.headers['x-request-id']).toBeTruthy();
    expect(upstream.requests.length).toBe(before);
  });

  it('forwards a keyed call with the identity headers and the limit headers, no pseudo-headers upstream', async () => {
    const res = await send(proto, `/echo/ok-${proto}?q=1`, { 'x-api-key': key.key });
    expect(res.status).toBe(200);
    expect(res.headers['x-ratelimit-limit']).toBe('10000');
    expect(res.headers['ratelimit-policy']).toBeTruthy();
    const seen = JSON.parse(res.body) as { url: string; headers: Record<string, string> };
    expect(seen.url).toBe(`/ok-${proto}?q=1`);
    expect(seen.headers['x-tollgate-consumer']).toBe(key.record.consumerId);
    expect(seen.headers['x-tollgate-tenant']).toBe(tenantId);
    expect(seen.headers['x-api-key']).toBeUndefined();
    expect(seen.headers['x-forwarded-host']).toBe(host);
    expect(seen.headers['x-forwarded-proto']).toBe(proto.endsWith('tls') ? 'https' : 'http');
    expect(Object.keys(seen.headers).filter((h) => h.startsWith(':'))).toEqual([]);
  });

  it('routes by host (:authority over HTTP/2): an unknown host is 404', async () => {
    const res = await send(proto, '/echo/x', { 'x-api-key': key.key }, { host: 'nobody.localhost' });
    expect(res.status).toBe(404);
    expect(errorCode(res)).toBe('not_found');
  });

  it('refuses a dot-segment path with 400', async () => {
    const res = await send(proto, '/echo/a/%2e%2e/b', { 'x-api-key': key.key });
    expect(res.status).toBe(400);
    expect(errorCode(res)).toBe('invalid_path');
  });

  it('streams a request body through and counts it', async () => {
    const res = await send(
      proto,
      '/echo/body',
      { 'x-api-key': key.key, 'content-type': 'text/plain' },
      { method: 'POST', body: 'x'.repeat(5000) },
    );
    expect(res.status).toBe(200);
    expect((JSON.parse(res.body) as { bodyLength: number }).bodyLength).toBe(5000);
  });

  it('limits: the third call on a 2-per-minute plan is 429 with Retry-After', async () => {
    const tiny = await issueKey(redis, ks, tenantId, tinyPlan);
    const statuses: number[] = [];
    let last: Answer | null = null;
    for (let i = 0; i < 3; i++) {
      last = await send(proto, '/echo/limited', { 'x-api-key': tiny.key });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 429]);
    expect(errorCode(last!)).toBe('rate_limited');
    expect(Number(last!.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('serves the second GET of a cached route from the cache', async () => {
    const p = `/cached/item-${proto}`;
    const first = await send(proto, p, { 'x-api-key': key.key });
    const second = await send(proto, p, { 'x-api-key': key.key });
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(second.headers['x-cache']).toBe('HIT');
    expect(second.body).toBe(first.body);
    expect(upstream.requests.filter((r) => r.url === `/item-${proto}`).length).toBe(1);
  });
});

describe('ALPN and h2c', () => {
  const negotiate = (protocols: string[] | undefined) =>
    new Promise<string | false>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: tlsPort, rejectUnauthorized: false, ALPNProtocols: protocols }, () => {
        resolve(s.alpnProtocol ?? false);
        s.destroy();
      });
      s.on('error', reject);
    });

  it('negotiates h2 when offered, HTTP/1.1 when only it (or nothing) is offered', async () => {
    expect(await negotiate(['h2', 'http/1.1'])).toBe('h2');
    expect(await negotiate(['http/1.1'])).toBe('http/1.1');
    expect(await negotiate(undefined)).toBe(false);
  });

  it('speaks h2c only where GATEWAY_H2C turns it on; HTTP/1.1 on that port is unaffected', async () => {
    const refused = await rawH2(plainOnlyPort, [
      requestHeaders([
        [':method', 'GET'],
        [':scheme', 'http'],
        [':path', '/echo/x'],
        [':authority', host],
      ]),
    ]);
    expect(refused.answered).toBe(false);
    const on = await rawH2(port, [
      requestHeaders([
        [':method', 'GET'],
        [':scheme', 'http'],
        [':path', '/echo/x'],
        [':authority', host],
      ]),
    ]);
    expect(on.answered).toBe(true);
    const h1 = await send('h1', '/echo/h1-still', { 'x-api-key': key.key });
    expect(h1.status).toBe(200);
  });
});

describe('HTTP/2 abuse is refused before any upstream sees it', () => {
  const base = (p: string): [string, string][] => [
    [':method', 'POST'],
    [':scheme', 'http'],
    [':path', p],
    [':authority', host],
    ['x-api-key', key.key],
  ];
  const cases: [string, (p: string) => Buffer[]][] = [
    [
      'Transfer-Encoding in an h2 request',
      (p) => [requestHeaders([...base(p), ['transfer-encoding', 'chunked']], true), dataFrame(Buffer.from('5\r\nhello\r\n0\r\n\r\n'))],
    ],
    ['a Connection header', (p) => [requestHeaders([...base(p), ['connection', 'keep-alive']])]],
    ['Upgrade in an h2 request', (p) => [requestHeaders([...base(p), ['upgrade', 'websocket']])]],
    ['TE other than trailers', (p) => [requestHeaders([...base(p), ['te', 'gzip']])]],
    ['an upper-case header name', (p) => [requestHeaders([...base(p), ['X-Smuggle', '1']])]],
    ['a repeated :path', (p) => [requestHeaders([...base(p), [':path', '/echo/other']])]],
    ['a missing :path', (p) => [requestHeaders(base(p).filter(([n]) => n !== ':path'))]],
    ['a missing :method', (p) => [requestHeaders(base(p).filter(([n]) => n !== ':method'))]],
    ['an unknown pseudo-header', (p) => [requestHeaders([[':foo', 'bar'], ...base(p)])]],
    ['a pseudo-header after a regular one', (p) => [requestHeaders([...base(p).filter(([n]) => n !== ':path'), [':path', p]])]],
    [
      'Content-Length larger than the DATA sent',
      (p) => [requestHeaders([...base(p), ['content-length', '10']], true), dataFrame(Buffer.from('hello'))],
    ],
    [
      'Content-Length smaller than the DATA sent',
      (p) => [requestHeaders([...base(p), ['content-length', '2']], true), dataFrame(Buffer.from('hello world'))],
    ],
  ];

  it.each(cases)('%s: the stream or connection is reset', async (_name, frames) => {
    const p = `/echo/abuse-${Math.random().toString(36).slice(2)}`;
    const res = await rawH2(port, frames(p));
    expect(res.answered).toBe(false);
    expect(res.reset !== null || res.goaway !== null).toBe(true);
    expect(upstream.requests.some((r) => r.url === p.slice('/echo'.length))).toBe(false);
  });

  it('cancels a stream whose declared body never arrives, like HTTP/1.1’s request timeout', async () => {
    const p = `/echo/slow-body-${Date.now()}`;
    const started = Date.now();
    const res = await rawH2(
      port,
      [requestHeaders([...base(p), ['content-length', '10']], true), dataFrame(Buffer.from('abc'), false)],
      3 * RECEIVE_TIMEOUT_MS,
    );
    expect(res.reset).not.toBeNull();
    expect(Date.now() - started).toBeGreaterThanOrEqual(RECEIVE_TIMEOUT_MS - 100);
    expect(upstream.requests.some((r) => r.url === p.slice('/echo'.length))).toBe(false);
  });

  it(':path without a leading slash never reaches the upstream', async () => {
    const before = upstream.requests.length;
    const res = await rawH2(port, [requestHeaders(base('echo/x').map(([n, v]) => (n === ':method' ? [n, 'GET'] : [n, v])))]);
    expect(res.answered || res.reset !== null || res.goaway !== null).toBe(true);
    expect(upstream.requests.length).toBe(before);
  });

  it('CONNECT is refused with 405, and :authority disagreeing with Host with 400', async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const status = (h: http2.OutgoingHttpHeaders) =>
        new Promise<number>((resolve, reject) => {
          const req = session.request(h);
          req.on('response', (r) => resolve(Number(r[':status'])));
          req.on('error', reject);
          req.resume();
          req.end();
        });
      expect(await status({ ':method': 'CONNECT', ':authority': 'internal.example:22' })).toBe(405);
      expect(await status({ ':path': '/echo/x', ':authority': host, host: 'other.localhost', 'x-api-key': key.key })).toBe(400);
    } finally {
      session.close();
    }
  });

  it('translates to HTTP/1.1 upstream: no TE, one Cookie, the host from :authority', async () => {
    const p = `/echo/translate-${Date.now()}`;
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      await new Promise<void>((resolve, reject) => {
        const req = session.request({ ':path': p, ':authority': host, 'x-api-key': key.key, te: 'trailers', cookie: ['a=1', 'b=2'] });
        req.on('response', () => undefined);
        req.resume();
        req.on('end', resolve);
        req.on('error', reject);
        req.end();
      });
    } finally {
      session.close();
    }
    const seen = upstream.requests.find((r) => r.url === p.slice('/echo'.length))!;
    expect(seen.headers.te).toBeUndefined();
    expect(seen.headers.cookie).toBe('a=1; b=2');
    expect(seen.headers['x-forwarded-host']).toBe(host);
    expect(seen.headers.host).toMatch(/^127\.0\.0\.1:\d+$/);
  });
});
