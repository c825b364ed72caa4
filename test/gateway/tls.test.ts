import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyspace } from '@tollgate/policy';
import { loadGatewayConfig } from '../../apps/gateway/src/env';
import { createGateway, type Gateway } from '../../apps/gateway/src/server';
import { testEnv, testRedis, uniquePrefix } from '../harness';
import { issueKey, makeApi, makePlan, makeSnapshot, publishSnapshot, startUpstream, type IssuedKey, type Upstream } from './fixtures';

let redis: Redis;
let gw: Gateway;
let tlsPort: number;
let host: string;
let key: IssuedKey;
let plain: Upstream;
let selfSigned: ReturnType<typeof createServer>;
const dir = mkdtempSync(path.join(tmpdir(), 'tg-tls-'));
const certFile = path.join(dir, 'cert.pem');
const keyFile = path.join(dir, 'key.pem');

beforeAll(async () => {
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=localhost'],
    { stdio: 'ignore' },
  );
  redis = testRedis();
  const prefix = uniquePrefix('tls');
  const ks = createKeyspace(prefix);
  plain = await startUpstream();
  selfSigned = createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, (_req, res) =>
    res.end('should never be reached'),
  );
  await new Promise<void>((r) => selfSigned.listen(0, '127.0.0.1', r));
  const untrusted = makeApi(`https://127.0.0.1:${(selfSigned.address() as AddressInfo).port}`, { basePath: '/untrusted', retries: 0 });
  const api = makeApi(plain.url);
  const plan = makePlan([api.id, untrusted.id]);
  const snap = makeSnapshot([api, untrusted], [plan]);
  host = `${snap.tenantSlug}.localhost`;
  await publishSnapshot(redis, ks, snap);
  key = await issueKey(redis, ks, snap.tenantId, plan);
  gw = await createGateway(
    loadGatewayConfig({
      REDIS_URL: testEnv().redisUrl,
      REDIS_PREFIX: prefix,
      GATEWAY_PORT: '0',
      GATEWAY_TLS_PORT: '0',
      GATEWAY_HOST: '127.0.0.1',
      GATEWAY_TLS_CERT: certFile,
      GATEWAY_TLS_KEY: keyFile,
      GATEWAY_SPOOL_DIR: path.join(dir, 'spool'),
      GATEWAY_ACCESS_LOG: 'false',
      LOG_LEVEL: 'silent',
    }),
  );
  ({ tlsPort } = (await gw.listen()) as { tlsPort: number });
});

afterAll(async () => {
  await gw?.shutdown();
  await plain?.close();
  selfSigned?.close();
  await redis?.quit();
});

describe('TLS', () => {
  const dispatcher = new Agent({ connect: { rejectUnauthorized: false } });

  it('serves HTTPS when a certificate is configured and says so upstream', async () => {
    const res = await request(`https://127.0.0.1:${tlsPort}/echo/x`, { dispatcher, headers: { host, 'x-api-key': key.key } });
    expect(res.statusCode).toBe(200);
    const seen = (await res.body.json()) as { headers: Record<string, string> };
    expect(seen.headers['x-forwarded-proto']).toBe('https');
  });

  it('verifies upstream certificates: an untrusted one is a 502, never a silent downgrade', async () => {
    const res = await request(`https://127.0.0.1:${tlsPort}/untrusted/x`, { dispatcher, headers: { host, 'x-api-key': key.key } });
    expect(res.statusCode).toBe(502);
    expect(((await res.body.json()) as { error: { code: string } }).error.code).toBe('bad_gateway');
  });
});
