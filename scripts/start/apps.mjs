// The platform's apps as `npm start` runs them: built once (again only when their sources, or
// the workspace packages they bundle, change), then started through their own `start` script.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * In start order: what the gateway forwards to first, then the worker (drains the outbox and the
 * usage queue), the gateway, and the console last (the slowest to build and to start).
 * `probe` is the URL that answers once the app is up (any HTTP answer counts).
 */
export const APPS = [
  { name: 'upstream', dir: 'apps/demo-upstream', portKey: 'upstream', probe: (p) => `http://127.0.0.1:${p.upstream}/get` },
  { name: 'worker', dir: 'apps/worker', portKey: 'worker', probe: (p) => `http://127.0.0.1:${p.worker}/healthz` },
  { name: 'gateway', dir: 'apps/gateway', portKey: 'gateway', probe: (p) => `http://127.0.0.1:${p.gatewayAdmin}/healthz` },
  {
    name: 'console',
    dir: 'apps/console',
    portKey: 'console',
    probe: (p) => `http://127.0.0.1:${p.console}/`,
    // `npm run build` writes .next, then bundles the console's server (src/main.ts) last.
    buildMarker: 'dist/main.js',
    readyTimeoutMs: 120_000,
  },
];

export function readApp(root, app) {
  const pkgPath = path.join(root, app.dir, 'package.json');
  if (!existsSync(pkgPath)) return null;
  const pkg = JSON.parse(readFileSync(pkgPath, 'utf8'));
  return { workspace: pkg.name, scripts: pkg.scripts ?? {} };
}

const SKIP_DIRS = new Set(['node_modules', 'dist', '.next', '.turbo', 'coverage', 'test-results']);

function newestMtime(p) {
  if (!existsSync(p)) return 0;
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const e of readdirSync(p)) {
    if (SKIP_DIRS.has(e)) continue;
    newest = Math.max(newest, newestMtime(path.join(p, e)));
  }
  return newest;
}

/** True when the app has never been built, or something it is built from changed since. */
export function needsBuild(root, app) {
  const marker = path.join(root, app.dir, app.buildMarker ?? 'dist/main.js');
  if (!existsSync(marker)) return true;
  const built = statSync(marker).mtimeMs;
  const inputs = [path.join(root, app.dir), path.join(root, 'packages'), path.join(root, 'package-lock.json')];
  return inputs.some((p) => newestMtime(p) > built);
}

/** PATH the way `npm run` sets it, so a script's `next`/`tsx` resolve without npm in between. */
export function scriptPath(root, appDir) {
  return [path.join(root, appDir, 'node_modules/.bin'), path.join(root, 'node_modules/.bin'), process.env.PATH].join(path.delimiter);
}
