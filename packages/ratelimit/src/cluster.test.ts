import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, Redis } from 'ioredis';
import { createKeyspace } from '@tollgate/policy';
import { waitFor } from '../../../test/harness';
import { createLimitKeys, createRedisLimiter } from './index';
import { decided } from './test-support';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return p;
}

/** A throwaway three-master Redis Cluster: the decision script must run on it unchanged. */
describe('on a Redis Cluster', () => {
  const nodes: ChildProcess[] = [];
  let dir: string;
  let ports: number[] = [];
  let cluster: Cluster;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'tg-cluster-'));
    ports = [await freePort(), await freePort(), await freePort()];
    for (const port of ports) {
      nodes.push(
        spawn(
          'redis-server',
          [
            '--port',
            String(port),
            '--bind',
            '127.0.0.1',
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            `nodes-${port}.conf`,
            '--save',
            '',
            '--appendonly',
            'no',
            '--dir',
            dir,
          ],
          { stdio: 'ignore' },
        ),
      );
    }
    for (const port of ports) {
      const probe = new Redis({ port, retryStrategy: () => 20, maxRetriesPerRequest: 0 });
      probe.on('error', () => undefined);
      await waitFor(async () => (await probe.ping().catch(() => null)) === 'PONG', { what: `cluster node ${port}` });
      probe.disconnect();
    }
    const created = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'],
      { encoding: 'utf8' },
    );
    if (created.status !== 0) throw new Error(`cluster create failed: ${created.stdout}${created.stderr}`);
    const probe = new Redis({ port: ports[0] });
    await waitFor(async () => (await probe.cluster('INFO')).includes('cluster_state:ok'), { timeoutMs: 10_000, what: 'cluster ok' });
    probe.disconnect();
    cluster = new Cluster([{ host: '127.0.0.1', port: ports[0]! }], {
      enableOfflineQueue: false,
      redisOptions: { maxRetriesPerRequest: 1 },
    });
    await waitFor(() => cluster.status === 'ready', { what: 'cluster client ready' });
  });

  afterAll(async () => {
    cluster?.disconnect();
    for (const n of nodes) {
      if (n.exitCode === null) {
        n.kill('SIGTERM');
        await once(n, 'exit');
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('decides plan rate + route rate + quota in one script for subjects on every node', async () => {
    const ks = createKeyspace('tgtest_cluster');
    const limiter = createRedisLimiter({ redis: cluster, timeoutMs: 2000 });
    const slotsSeen = new Set<number>();
    for (let s = 0; s < 12; s++) {
      const k = createLimitKeys(ks, { keyId: `key_${s}`, subscriptionId: `sub_${s}` });
      slotsSeen.add(Number(await cluster.cluster('KEYSLOT', k.quota(0))));
      const req = {
        rates: [
          { name: 'plan', key: k.keyRate(), limit: 3, windowSeconds: 60, algorithm: 'sliding_window' as const },
          { name: 'route', key: k.routeRate('rte_1'), limit: 10, windowSeconds: 60, algorithm: 'gcra' as const },
        ],
        quota: { key: k.quota(0), limit: 100, mode: 'hard_cap' as const, periodEnd: Date.now() + 86_400_000 },
      };
      const allowed = [];
      for (let i = 0; i < 4; i++) allowed.push(decided(await limiter.decide(req)).allowed);
      expect(allowed).toEqual([true, true, true, false]);
      expect(decided(await limiter.decide({ rates: [], quota: req.quota })).quota!.used).toBe(4);
    }
    // Twelve subscriptions hash to several slots, so the script really ran on more than one node.
    expect(slotsSeen.size).toBeGreaterThan(1);
  });

  it('concurrent decisions for many subscriptions are batched per hash tag, never across slots', async () => {
    const ks = createKeyspace('tgtest_cluster_batch');
    const limiter = createRedisLimiter({ redis: cluster, timeoutMs: 2000 });
    const reqs = Array.from({ length: 12 }, (_, s) => {
      const k = createLimitKeys(ks, { keyId: `key_${s}`, subscriptionId: `sub_${s}` });
      return {
        rates: [{ name: 'plan', key: k.keyRate(), limit: 2, windowSeconds: 60, algorithm: 'fixed_window' as const }],
        quota: { key: k.quota(0), limit: 100, mode: 'hard_cap' as const, periodEnd: Date.now() + 86_400_000 },
      };
    });
    // Three requests per subscription in one turn: twelve calls of three, no CROSSSLOT errors.
    const outcomes = await Promise.all(reqs.flatMap((r) => [limiter.decide(r), limiter.decide(r), limiter.decide(r)]));
    expect(limiter.stats).toEqual({ calls: 12, decisions: 36 });
    const allowed = outcomes.map((o) => decided(o).allowed);
    for (let s = 0; s < 12; s++) expect(allowed.slice(s * 3, s * 3 + 3)).toEqual([true, true, false]);
  });
});
