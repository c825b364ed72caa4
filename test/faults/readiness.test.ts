// Redis becomes unreachable: a gateway serving an API that fails closed would answer every call
// to it with 503, so its /readyz turns 503 (`redis_unavailable_fail_closed`) and a balancer sends
// the traffic to a gateway that still reaches Redis. A gateway whose APIs all fail open stays ready:
// it serves on its memory limiter (ADR 0020).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyspace } from '@tollgate/policy';
import { waitFor } from '../harness/index';
import { makeApi, makePlan, makeSnapshot, publishSnapshot, spawnGateway, type GatewayProcess } from '../gateway/fixtures';
import { startPrivateRedis, type PrivateRedis } from './stack';

describe('readiness while Redis is unreachable', () => {
  let redis: PrivateRedis;
  const started: GatewayProcess[] = [];
  const spools: string[] = [];
  let redisStopped = false;
  const readyz = async (g: GatewayProcess) => {
    const res = await fetch(`http://127.0.0.1:${g.adminPort}/readyz`);
    return { status: res.status, body: (await res.json()) as { status: string; reason?: string | null } };
  };

  beforeAll(async () => {
    redis = await startPrivateRedis();
  }, 60_000);
  afterAll(async () => {
    for (const g of started) if (g.child.exitCode === null && g.child.signalCode === null) await g.stop('SIGKILL');
    if (!redisStopped) await redis?.stop();
    for (const d of spools) rmSync(d, { recursive: true, force: true });
  });

  async function gatewayWith(label: string, failMode: 'open' | 'closed'): Promise<GatewayProcess> {
    const ks = createKeyspace(`tgready${label}`);
    const api = makeApi('http://127.0.0.1:9', { failMode });
    await publishSnapshot(redis.client, ks, makeSnapshot([api], [makePlan([api.id])]));
    const spool = mkdtempSync(path.join(tmpdir(), `tg-ready-${label}-`));
    spools.push(spool);
    const g = await spawnGateway({
      REDIS_URL: redis.url,
      REDIS_PREFIX: ks.prefix,
      GATEWAY_SPOOL_DIR: spool,
      GATEWAY_INSTANCE_ID: `ready-${label}`,
      GATEWAY_REDIS_PING_INTERVAL_MS: '200',
    });
    started.push(g);
    await waitFor(async () => (await readyz(g)).status === 200, { timeoutMs: 30_000, what: `${label} ready` });
    return g;
  }

  it('turns 503 where an API fails closed, and stays 200 where every API fails open', async () => {
    const closed = await gatewayWith('closed', 'closed');
    const open = await gatewayWith('open', 'open');
    expect((await readyz(closed)).body).toMatchObject({ status: 'ready', reason: null });

    await redis.stop();
    redisStopped = true;
    const down = await waitFor(
      async () => {
        const r = await readyz(closed);
        return r.status === 503 ? r : null;
      },
      { timeoutMs: 20_000, what: 'the fail-closed gateway not ready' },
    );
    expect(down.body).toMatchObject({ status: 'not_ready', reason: 'redis_unavailable_fail_closed' });
    // The breaker is open in both (same Redis); the fail-open one still serves, so it stays ready.
    const metrics = await (await fetch(`http://127.0.0.1:${open.adminPort}/metrics`)).text();
    expect(metrics).toMatch(/tollgate_gateway_redis_breaker_open 1/);
    expect((await readyz(open)).status).toBe(200);
  }, 120_000);
});
