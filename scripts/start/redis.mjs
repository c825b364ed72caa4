// A private Redis under the data dir for `npm start` when REDIS_URL is unset. AOF on, so
// policy snapshots, counters and queued usage survive a restart; noeviction, so BullMQ's
// queues are never silently dropped (what production runs with too: infra/redis.conf).
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { aptInstall } from './apt.mjs';
import { say, shown } from './log.mjs';
import { isPortFree, redisPongs, waitUntil } from './net.mjs';

function findRedisServer() {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && existsSync(path.join(dir, 'redis-server'))) return path.join(dir, 'redis-server');
  }
  return null;
}

/** @returns the redis:// URL of the started server */
export async function startLocalRedis({ sup, root, dataDir, port, onExit }) {
  let bin = findRedisServer();
  if (!bin) {
    // A fresh Debian/Ubuntu machine, run as root: take Redis from apt rather than stop.
    const why = aptInstall(['redis-server'], say);
    bin = why === null ? findRedisServer() : null;
    if (!bin)
      throw new Error(
        `redis-server is not on the PATH (${why ?? 'installed, yet not found'}): install Redis (apt-get install redis-server) or set REDIS_URL`,
      );
  }
  const dir = path.join(dataDir, 'redis');
  say(`${existsSync(dir) ? 'reusing' : 'creating'} the Redis data in ${shown(root, dir)}`);
  mkdirSync(dir, { recursive: true });
  if (!(await isPortFree(port))) {
    throw new Error(
      `port ${port} is taken (is another \`npm start\` running?); set TOLLGATE_REDIS_PORT to another port or REDIS_URL to a server`,
    );
  }
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--daemonize',
    'no',
    '--appendonly',
    'yes',
    '--appendfsync',
    'everysec',
    '--save',
    '',
    '--maxmemory-policy',
    'noeviction',
    '--logfile',
    '',
    '--loglevel',
    'warning',
  ];
  const svc = sup.start('redis', bin, args, { env: process.env, cwd: dir, stopSignal: 'SIGTERM', onExit });
  if (!(await waitUntil(() => redisPongs(port), { timeoutMs: 30_000, alive: () => !svc.exited }))) {
    throw new Error('Redis did not answer PING within 30s (see the [redis] lines above)');
  }
  return `redis://127.0.0.1:${port}`;
}
