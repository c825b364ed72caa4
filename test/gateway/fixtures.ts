import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { generateApiKey, hashApiKey } from '@tollgate/keys';
import { encodeEvent, KeyRecord, PolicySnapshot, QUEUES, type ApiPolicy, type Keyspace, type PlanPolicy } from '@tollgate/policy';
import type { UsageBatch, UsageEvent } from '@tollgate/usage';
import { loadGatewayConfig, type GatewayConfig } from '../../apps/gateway/src/env';
import { testEnv, waitFor } from '../harness';
import { startAdminServer, type Gateway } from '../../apps/gateway/src/server';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Serves an in-process gateway's admin endpoints on an ephemeral port; `metrics()` scrapes it. */
export async function listenAdmin(gw: Gateway): Promise<{ server: Server; port: number; metrics: () => Promise<string> }> {
  const server = startAdminServer(gw);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const metrics = async () => {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    return res.text();
  };
  return { server, port, metrics };
}

/** The usage events a gateway queued for these request ids, in the same order (waits until all are there). */
export async function queuedUsageEvents(redis: Redis, ks: Keyspace, requestIds: readonly string[]): Promise<UsageEvent[]> {
  const queue = new Queue(QUEUES.usage, { connection: redis, prefix: ks.bullPrefix });
  try {
    return await waitFor(
      async () => {
        const jobs = await queue.getJobs(['waiting', 'prioritized', 'delayed', 'active', 'completed']);
        const all = jobs.flatMap((j) => (j.data as UsageBatch).events);
        const found = requestIds.map((id) => all.find((e) => e.id === id));
        return found.every(Boolean) ? (found as UsageEvent[]) : null;
      },
      { timeoutMs: 5000, what: `usage events of ${requestIds.join(', ')}` },
    );
  } finally {
    await queue.close();
  }
}

/**
 * Config for an in-process test gateway on the run's Redis under `prefix`: ephemeral port, its
 * own spool directory, no access log, silent. `extra` overrides (undefined = the default).
 */
export function testGatewayConfig(prefix: string, extra: Record<string, string | undefined> = {}): GatewayConfig {
  return loadGatewayConfig({
    REDIS_URL: testEnv().redisUrl,
    REDIS_PREFIX: prefix,
    GATEWAY_PORT: '0',
    GATEWAY_HOST: '127.0.0.1',
    GATEWAY_SPOOL_DIR: mkdtempSync(path.join(tmpdir(), 'tg-gw-')),
    GATEWAY_ACCESS_LOG: 'false',
    LOG_LEVEL: 'silent',
    ...extra,
  });
}

let seq = 0;
const id = (p: string) => `${p}_${Date.now().toString(36)}${(seq++).toString(36)}${Math.random().toString(36).slice(2, 6)}`;

export function makeApi(targetUrl: string | string[], over: Partial<ApiPolicy> = {}): ApiPolicy {
  const urls = Array.isArray(targetUrl) ? targetUrl : [targetUrl];
  return {
    id: id('api'),
    slug: 'echo',
    name: 'Echo',
    basePath: '/echo',
    version: 'v1',
    authMode: 'api_key',
    allowQueryKey: false,
    failMode: 'open',
    loadBalancing: 'round_robin',
    timeouts: { connectMs: 1000, headersMs: 5000, requestMs: 10_000 },
    retries: 1,
    jwt: null,
    targets: urls.map((url) => ({ id: id('tgt'), url, weight: 1, healthCheck: null })),
    routes: [{ id: id('rte'), methods: [], path: '/*', timeoutMs: null, cacheTtlSeconds: 0, transform: null, rateLimit: null }],
    ...over,
  };
}

export function makePlan(apiIds: string[], over: Partial<PlanPolicy> = {}): PlanPolicy {
  return {
    id: id('pln'),
    slug: 'free',
    name: 'Free',
    rateLimit: { limit: 1000, windowSeconds: 1, algorithm: 'sliding_window' },
    quota: null,
    apiIds,
    ...over,
  };
}

export function makeSnapshot(apis: ApiPolicy[], plans: PlanPolicy[], over: Partial<PolicySnapshot> = {}): PolicySnapshot {
  const tenantId = over.tenantId ?? id('ten');
  return PolicySnapshot.parse({
    schemaVersion: 1,
    tenantId,
    tenantSlug: tenantId.replace(/_/g, '-'),
    version: 1,
    publishedAt: new Date().toISOString(),
    hosts: [],
    // Test upstreams listen on 127.0.0.1.
    allowPrivateTargets: true,
    apis,
    plans,
    ...over,
  });
}

/** Writes a snapshot the way the control plane publishes it: value, version, announcement. */
export async function publishSnapshot(redis: Redis, ks: Keyspace, snapshot: PolicySnapshot): Promise<void> {
  const s = PolicySnapshot.parse(snapshot);
  await redis.multi().set(ks.policy(s.tenantId), JSON.stringify(s)).hset(ks.policyVersions, s.tenantId, String(s.version)).exec();
  await redis.publish(ks.eventsChannel, encodeEvent({ type: 'policy.updated', tenantId: s.tenantId, version: s.version }));
}

export type IssuedKey = { key: string; hash: string; record: KeyRecord };

/** A key record as the control plane publishes it: active, no plan, no expiry, unless `over` says otherwise. */
export function makeKeyRecord(over: Partial<KeyRecord> & { tenantId: string }): KeyRecord {
  return KeyRecord.parse({
    schemaVersion: 1,
    keyId: id('key'),
    consumerId: id('con'),
    subscriptionId: null,
    planId: null,
    status: 'active',
    subscriptionStatus: null,
    expiresAt: null,
    apiIds: [],
    scopes: [],
    rateLimitOverride: null,
    quotaOverride: null,
    periodStart: null,
    periodEnd: null,
    ...over,
  });
}

export async function issueKey(
  redis: Redis,
  ks: Keyspace,
  tenantId: string,
  plan: PlanPolicy | null,
  over: Partial<KeyRecord> = {},
): Promise<IssuedKey> {
  const key = generateApiKey('test');
  const hash = hashApiKey(key);
  const record = makeKeyRecord({
    tenantId,
    subscriptionId: plan ? id('sub') : null,
    planId: plan?.id ?? null,
    subscriptionStatus: plan ? 'active' : null,
    ...over,
  });
  await redis.set(ks.key(hash), JSON.stringify(record));
  return { key, hash, record };
}

export async function revokeKey(redis: Redis, ks: Keyspace, issued: IssuedKey): Promise<void> {
  await redis.set(ks.key(issued.hash), JSON.stringify({ ...issued.record, status: 'revoked' }));
  await redis.publish(ks.eventsChannel, encodeEvent({ type: 'key.revoked', hash: issued.hash }));
}

export type Upstream = {
  url: string;
  server: Server;
  requests: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[];
  close: () => Promise<void>;
};

/** A real HTTP upstream that records what it received; the default handler echoes it as JSON. */
export async function startUpstream(handler?: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<Upstream> {
  const requests: Upstream['requests'] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      if (handler) return handler(req, res, body);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, bodyLength: body.length }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Sends bytes exactly as given and returns the raw response (for framing attacks inject can't express). */
export function rawRequest(port: number, data: string | Buffer, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    }, timeoutMs);
    sock.on('data', (c) => {
      chunks.push(c);
      // One response is enough: stop once its body is complete.
      const text = Buffer.concat(chunks).toString('latin1');
      const head = text.indexOf('\r\n\r\n');
      const m = /content-length: (\d+)/i.exec(text);
      if (head !== -1 && m && text.length >= head + 4 + Number(m[1])) {
        clearTimeout(timer);
        sock.destroy();
        resolve(text);
      }
    });
    sock.on('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      if (chunks.length) resolve(Buffer.concat(chunks).toString('latin1'));
      else reject(err);
    });
    sock.write(data);
  });
}

export function statusOf(raw: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);
}

export type GatewayProcess = {
  child: ChildProcess;
  port: number;
  adminPort: number;
  logs: string[];
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
};

/** The node flags of the gateway's `start` script (`node --single-threaded-gc dist/main.js`), read, not copied. */
function startScriptFlags(): string[] {
  const pkg = JSON.parse(readFileSync(path.join(root, 'apps/gateway/package.json'), 'utf8')) as { scripts: { start: string } };
  return pkg.scripts.start.split(/\s+/).filter((a) => a.startsWith('--'));
}

/**
 * Starts `apps/gateway/src/main.ts` as its own process; resolves once it logs its ports. It runs
 * with the node flags of the gateway's start script unless `nodeFlags` says otherwise.
 */
export function spawnGateway(
  env: Record<string, string>,
  { nodeFlags = startScriptFlags(), startTimeoutMs = 90_000 }: { nodeFlags?: string[]; startTimeoutMs?: number } = {},
): Promise<GatewayProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', path.join(root, 'apps/gateway/src/main.ts')], {
      cwd: root,
      env: {
        ...process.env,
        GATEWAY_PORT: '0',
        GATEWAY_ADMIN_PORT: '0',
        GATEWAY_HOST: '127.0.0.1',
        GATEWAY_ADMIN_HOST: '127.0.0.1',
        GATEWAY_WORKERS: '1',
        LOG_LEVEL: 'info',
        GATEWAY_ACCESS_LOG: 'false',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const logs: string[] = [];
    let buf = '';
    let done = false;
    let seenPort = 0;
    let seenAdmin = 0;
    const timer = setTimeout(() => {
      if (!done) {
        child.kill('SIGKILL');
        reject(new Error(`gateway did not start:\n${logs.join('\n')}`));
      }
    }, startTimeoutMs);
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        logs.push(line);
        // Single process: one line carries both ports. Cluster: the primary logs the admin port,
        // each worker its (shared) port.
        if (line.includes('"gateway listening"') || line.includes('"gateway primary started"')) {
          const m = JSON.parse(line) as { port?: number; adminPort?: number | null };
          if (m.port) seenPort = m.port;
          if (m.adminPort) seenAdmin = m.adminPort;
        }
        if (!done && seenPort && seenAdmin) {
          done = true;
          clearTimeout(timer);
          resolve({
            child,
            port: seenPort,
            adminPort: seenAdmin,
            logs,
            stop: async (signal = 'SIGTERM') => {
              if (child.exitCode === null) child.kill(signal);
              return exited;
            },
          });
        }
      }
    });
    child.stderr!.on('data', (c: Buffer) => logs.push(c.toString()));
    child.once('exit', (code) => {
      if (!done) {
        clearTimeout(timer);
        reject(new Error(`gateway exited with ${code}:\n${logs.join('\n')}`));
      }
    });
  });
}
