import { Writable } from 'node:stream';
import pino from 'pino';
import type { Redis } from 'ioredis';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyspace } from '@tollgate/policy';
import { createGateway, type Gateway } from '../../apps/gateway/src/server';
import { testRedis, uniquePrefix, waitFor } from '../harness';
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
} from './fixtures';

const lines: string[] = [];
let redis: Redis;
let gw: Gateway;
let port: number;
let host: string;
let key: IssuedKey;
let upstream: Upstream;

beforeAll(async () => {
  redis = testRedis();
  const prefix = uniquePrefix('log');
  const ks = createKeyspace(prefix);
  upstream = await startUpstream();
  const api = makeApi(upstream.url, { allowQueryKey: true });
  const plan = makePlan([api.id]);
  const snap = makeSnapshot([api], [plan]);
  host = `${snap.tenantSlug}.localhost`;
  await publishSnapshot(redis, ks, snap);
  key = await issueKey(redis, ks, snap.tenantId, plan);
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  const logger = pino({ level: 'debug' }, sink);
  gw = await createGateway(testGatewayConfig(prefix, { GATEWAY_ACCESS_LOG: 'true', LOG_LEVEL: undefined }), { logger });
  ({ port } = await gw.listen());
});

afterAll(async () => {
  await gw?.shutdown();
  await upstream?.close();
  await redis?.quit();
});

describe('access logs', () => {
  it('log one structured line per request with ids, and never the key', async () => {
    const bad = key.key.slice(0, -2) + 'zz';
    const calls = [
      { url: '/echo/a', headers: { authorization: `Bearer ${key.key}` } },
      { url: '/echo/b', headers: { 'x-api-key': key.key } },
      { url: `/echo/c?api_key=${key.key}`, headers: {} },
      { url: '/echo/d', headers: { 'x-api-key': bad } },
    ];
    for (const c of calls) {
      const res = await request(`http://127.0.0.1:${port}${c.url}`, { headers: { host, ...c.headers } });
      await res.body.dump();
    }
    const access = await waitFor(() => {
      const l = lines.map((x) => JSON.parse(x)).filter((x) => x.msg === 'request');
      return l.length >= 4 ? l : null;
    });
    expect(access.slice(-4).map((l) => l.status)).toEqual([200, 200, 200, 401]);
    expect(access.at(-2)).toMatchObject({
      keyId: key.record.keyId,
      tenantId: expect.any(String),
      apiId: expect.any(String),
      requestId: expect.any(String),
    });
    const all = lines.join('\n');
    expect(all).not.toContain(key.key);
    expect(all).not.toContain(bad);
    expect(all).not.toContain(key.key.slice(8, 24));
  });
});
