import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { baseChildEnv } from '../harness';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export type WorkerProcess = { child: ChildProcess; port: number; output: () => string; exited: Promise<number | null> };

/** Runs apps/worker as a real child process (tsx), resolved once it logs that it started. */
export async function spawnWorker(env: Record<string, string>): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'apps/worker/src/main.ts')], {
    cwd: root,
    env: { ...baseChildEnv(), NODE_ENV: 'test', WORKER_HOST: '127.0.0.1', WORKER_PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start:\n${out.slice(-3000)}`)), 30_000);
    const check = () => {
      const m = out.match(/"port":(\d+)[^\n]*"msg":"worker started"/);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited with ${code} before starting:\n${out.slice(-3000)}`));
    });
  });
  return { child, port, output: () => out, exited };
}
