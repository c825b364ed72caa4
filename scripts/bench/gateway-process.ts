// What the benchmark scripts share: free ports, the bundled gateway as a child process, and a
// process's CPU time and memory from /proc.
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Builds apps/gateway/dist/main.js, as production runs it. */
export function bundleGateway(): void {
  const bundle = spawnSync(process.execPath, [path.join(root, 'scripts/bundle.mjs'), 'src/main.ts'], {
    cwd: path.join(root, 'apps/gateway'),
    encoding: 'utf8',
  });
  if (bundle.status !== 0) throw new Error(`gateway bundle failed:\n${bundle.stderr}`);
}

export type GatewayProcessOptions = {
  redisUrl: string;
  prefix: string;
  port: number;
  adminPort: number;
  workers: number;
  spoolDir: string;
  /** More variables, over the defaults. */
  env?: Record<string, string>;
  stdio?: StdioOptions;
};

/** The bundled gateway with `--single-threaded-gc`, both ports on loopback, warnings only. */
export function spawnGateway(o: GatewayProcessOptions): ChildProcess {
  return spawn(process.execPath, ['--single-threaded-gc', path.join(root, 'apps/gateway/dist/main.js')], {
    env: {
      ...process.env,
      REDIS_URL: o.redisUrl,
      REDIS_PREFIX: o.prefix,
      GATEWAY_PORT: String(o.port),
      GATEWAY_ADMIN_PORT: String(o.adminPort),
      GATEWAY_HOST: '127.0.0.1',
      GATEWAY_ADMIN_HOST: '127.0.0.1',
      GATEWAY_WORKERS: String(o.workers),
      GATEWAY_SPOOL_DIR: o.spoolDir,
      LOG_LEVEL: 'warn',
      NODE_ENV: 'production',
      ...o.env,
    },
    stdio: o.stdio ?? ['ignore', 'pipe', 'pipe'],
  });
}

const TICK = 100; // USER_HZ

/** User + system CPU time of a process so far (0 once it is gone). */
export function procCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / TICK;
  } catch {
    return 0;
  }
}

export function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

export function childPids(pid: number): number[] {
  const r = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean).map(Number);
}
