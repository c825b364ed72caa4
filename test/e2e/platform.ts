// Shared by the browser suites: one production build of the console per change (guarded by a
// lock so parallel files build at most once), free ports, and the apps as child processes.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { baseChildEnv, chromiumPath, freePort, waitFor } from '../harness/index';

export { freePort };

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const appDir = path.join(root, 'apps/console');
const nextBin = path.join(root, 'node_modules/next/dist/bin/next');
/** The console's process (`npm start -w @tollgate/console`): Next.js behind src/main.ts. */
export const serverEntry = path.join(appDir, 'dist/main.js');

function newestMtime(dir: string): number {
  let max = 0;
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    const st = statSync(full);
    max = Math.max(max, st.isDirectory() ? newestMtime(full) : st.mtimeMs);
  }
  return max;
}

function buildIsFresh(): boolean {
  const sources = Math.max(newestMtime(path.join(appDir, 'src')), statSync(path.join(appDir, 'next.config.ts')).mtimeMs);
  // The Next build and the console's own server (src/main.ts, bundled to dist/main.js).
  return [path.join(appDir, '.next/BUILD_ID'), serverEntry].every((f) => existsSync(f) && statSync(f).mtimeMs > sources);
}

/** Reuses the console's production build when newer than every source file; builds once otherwise. */
export async function ensureConsoleBuild(): Promise<void> {
  if (buildIsFresh()) return;
  const lock = path.join(os.tmpdir(), 'tollgate-console-build.lock');
  await waitFor(
    () => {
      try {
        mkdirSync(lock);
        return true;
      } catch {
        // A lock left by a killed run is stale after 10 minutes.
        const st = statSync(lock, { throwIfNoEntry: false });
        if (st && Date.now() - st.mtimeMs > 600_000) rmSync(lock, { recursive: true, force: true });
        return false;
      }
    },
    { timeoutMs: 600_000, intervalMs: 500, what: 'the console build lock' },
  );
  try {
    // Another suite (or a person) may be running `next build` already: wait for it, then reuse.
    for (let attempt = 0; ; attempt++) {
      if (buildIsFresh()) return;
      const out = await runNextBuild();
      if (out === null) return;
      if (!out.includes('Another next build process is already running') || attempt >= 120) throw new Error(`next build failed:\n${out}`);
      await new Promise((r) => setTimeout(r, 5000));
    }
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** Async, so the suite can start its other processes while Next builds; null on success, else the output. */
async function runNextBuild(): Promise<string | null> {
  const out = await run([nextBin, 'build']);
  return out ?? (await run([path.join(root, 'scripts/bundle.mjs'), 'src/main.ts']));
}

async function run(args: string[]): Promise<string | null> {
  const child = spawn(process.execPath, args, {
    cwd: appDir,
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-6000)));
  child.stderr.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-6000)));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  return code === 0 ? null : out;
}

export type Child = { child: ChildProcess; output: () => string; stop: () => Promise<void> };

function track(child: ChildProcess): Child {
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-200_000)));
  child.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-200_000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** The console's server (dist/main.js) on a free port; resolves when /login answers. */
export async function startConsole(env: Record<string, string>): Promise<Child & { base: string }> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const c = track(
    spawn(process.execPath, [serverEntry], {
      cwd: appDir,
      env: {
        ...process.env,
        NODE_ENV: 'production',
        CONSOLE_URL: base,
        CONSOLE_PORT: String(port),
        CONSOLE_HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
        NEXT_TELEMETRY_DISABLED: '1',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  await waitFor(async () => (await fetch(`${base}/login`)).ok, {
    timeoutMs: 60_000,
    intervalMs: 200,
    what: `the console to start\n${c.output().slice(-2000)}`,
  });
  return { ...c, base };
}

/** The gateway (one process) with tsx on free ports; resolves when its admin port says ready. */
export async function startGateway(env: Record<string, string>): Promise<Child & { port: number }> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const c = track(
    spawn(process.execPath, ['--import', 'tsx', path.join(root, 'apps/gateway/src/main.ts')], {
      cwd: root,
      env: {
        ...baseChildEnv(),
        NODE_ENV: 'test',
        LOG_LEVEL: 'warn',
        GATEWAY_WORKERS: '1',
        GATEWAY_HOST: '127.0.0.1',
        GATEWAY_ADMIN_HOST: '127.0.0.1',
        GATEWAY_PORT: String(port),
        GATEWAY_ADMIN_PORT: String(adminPort),
        GATEWAY_ACCESS_LOG: 'false',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  await waitFor(async () => (await fetch(`http://127.0.0.1:${adminPort}/readyz`)).ok, {
    timeoutMs: 60_000,
    intervalMs: 200,
    what: 'the gateway to be ready',
  }).catch((err: Error) => {
    throw new Error(`${err.message}\n${c.output().slice(-3000)}`);
  });
  return { ...c, port };
}

/** `extraArgs`, e.g. `--host-resolver-rules=MAP developers.acme.test 127.0.0.1` for a portal's own host. */
export async function launchBrowser(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', ...extraArgs],
  });
}

/** Runs axe-core in the page; returns the serious and critical violations. */
export async function axeViolations(page: Page, axeSource: string) {
  // After a client-side navigation (e.g. the redirect after logout) the URL changes before Next
  // has applied the new page's <title>: wait for the document to settle instead of auditing it mid-swap.
  await page.waitForLoadState('load');
  await page.waitForFunction(() => (globalThis as unknown as { document: { title: string } }).document.title.trim().length > 0);
  if (!(await page.evaluate(() => 'axe' in globalThis))) await page.addScriptTag({ content: axeSource });
  const results = await page.evaluate(async () => {
    // Runs in the browser; the suite's tsconfig has no DOM types, hence the structural cast.
    const g = globalThis as unknown as {
      document: unknown;
      axe: {
        run: (
          ctx: unknown,
          opts: unknown,
        ) => Promise<{ violations: Array<{ id: string; impact: string | null; help: string; nodes: Array<{ target: unknown }> }> }>;
      };
    };
    return g.axe.run(g.document, { resultTypes: ['violations'] });
  });
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.slice(0, 5).map((n) => JSON.stringify(n.target)) }));
}
