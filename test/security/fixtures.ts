import { connect } from 'node:net';
import type { Redis } from 'ioredis';
import { createKeyspace, type ApiPolicy, type Keyspace, type PolicySnapshot } from '@tollgate/policy';
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
} from '../gateway/fixtures';

/** Route limits that identify, through `RateLimit-Policy`, which route limited a request. */
export const LIMIT_KEYLESS = 100_003;
export const LIMIT_ROUTE_X = 7001;
export const LIMIT_PLAN = 9001;

/**
 * The probe's layout: a keyless API at `/` (upstream `open`) beside a keyed API at `/p`
 * (upstream `keyed`) whose route `/v1/x` has a limit of its own. Both upstreams record what
 * reached them.
 */
export type AttackBed = {
  redis: Redis;
  ks: Keyspace;
  gw: Gateway;
  port: number;
  host: string;
  tenantId: string;
  snapshot: PolicySnapshot;
  open: Upstream;
  keyed: Upstream;
  key: IssuedKey;
  apis: { open: ApiPolicy; keyed: ApiPolicy };
  close: () => Promise<void>;
};

export async function startAttackBed(env: Record<string, string | undefined> = {}, over: Partial<ApiPolicy> = {}): Promise<AttackBed> {
  const redis = testRedis();
  const prefix = uniquePrefix('sec');
  const ks = createKeyspace(prefix);
  const open = await startUpstream();
  const keyed = await startUpstream();
  const route = (path: string, limit: number | null) => ({
    id: `rte_${path.replace(/\W/g, '') || 'root'}_${Math.random().toString(36).slice(2, 8)}`,
    methods: [],
    path,
    timeoutMs: null,
    cacheTtlSeconds: 0,
    transform: null,
    rateLimit: limit === null ? null : { limit, windowSeconds: 60, algorithm: 'sliding_window' as const },
  });
  const openApi = makeApi(open.url, { basePath: '/', authMode: 'none', slug: 'open', routes: [route('/*', LIMIT_KEYLESS)] });
  const keyedApi = makeApi(keyed.url, {
    basePath: '/p',
    slug: 'keyed',
    routes: [route('/v1/x', LIMIT_ROUTE_X), route('/*', null)],
    ...over,
  });
  const plan = makePlan([openApi.id, keyedApi.id], { rateLimit: { limit: LIMIT_PLAN, windowSeconds: 60, algorithm: 'sliding_window' } });
  const snapshot = makeSnapshot([openApi, keyedApi], [plan]);
  await publishSnapshot(redis, ks, snapshot);
  const key = await issueKey(redis, ks, snapshot.tenantId, plan);
  const gw = await createGateway(testGatewayConfig(prefix, env));
  const { port } = await gw.listen();
  return {
    redis,
    ks,
    gw,
    port,
    host: `${snapshot.tenantSlug}.localhost`,
    tenantId: snapshot.tenantId,
    snapshot,
    open,
    keyed,
    key,
    apis: { open: openApi, keyed: keyedApi },
    async close() {
      await gw.shutdown();
      await open.close();
      await keyed.close();
      await redis.quit();
    },
  };
}

export type RawResponse = { status: number; headers: Record<string, string>; body: string; raw: string };

/** Parses one HTTP/1.1 response (headers lower-cased; repeated ones joined with ', '). */
export function parseResponse(raw: string): RawResponse {
  const head = raw.indexOf('\r\n\r\n');
  const lines = (head === -1 ? raw : raw.slice(0, head)).split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const c = line.indexOf(':');
    if (c <= 0) continue;
    const name = line.slice(0, c).trim().toLowerCase();
    const value = line.slice(c + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return { status, headers, body: head === -1 ? '' : raw.slice(head + 4), raw };
}

/**
 * Writes `data` on a fresh connection and reads until the server closes it (requests are sent
 * with `Connection: close`) or `timeoutMs` passes.
 */
export function exchange(port: number, data: string | Buffer, timeoutMs = 10_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const done = () => {
      clearTimeout(timer);
      resolve(parseResponse(Buffer.concat(chunks).toString('latin1')));
    };
    const timer = setTimeout(() => {
      sock.destroy();
      done();
    }, timeoutMs);
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('close', done);
    sock.on('error', (err) => {
      if (chunks.length === 0) {
        clearTimeout(timer);
        reject(err);
      }
    });
    sock.write(data);
  });
}

/** A GET request as raw bytes: the target exactly as given (UTF-8 if it is not ASCII). */
export function rawGet(target: string, host: string, headers: Record<string, string> = {}): Buffer {
  let text = `GET ${target} HTTP/1.1\r\nHost: ${host}\r\n`;
  for (const [k, v] of Object.entries(headers)) text += `${k}: ${v}\r\n`;
  text += 'Connection: close\r\n\r\n';
  return Buffer.from(text, 'utf8');
}
