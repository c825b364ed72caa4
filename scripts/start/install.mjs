// Dependencies for `npm start` and `npm test` on a bare clone: `npm ci` once, and the Prisma
// client. Node built-ins only: this runs before anything is installed.
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { say, warn } from './log.mjs';

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** @param {import('./supervisor.mjs').Supervisor} sup */
export async function ensureInstalled(sup, root) {
  const marker = path.join(root, 'node_modules/.package-lock.json');
  if (!existsSync(marker)) {
    say('node_modules is missing: running npm ci (once)…');
    const code = await sup.run('npm', npm, ['ci', '--no-audit', '--no-fund'], { cwd: root, env: process.env });
    if (code !== 0) throw new Error(`npm ci failed (exit ${code})`);
  } else if (statSync(path.join(root, 'package-lock.json')).mtimeMs > statSync(marker).mtimeMs + 1000) {
    // Not acted on: npm ci would delete node_modules under anything else using this checkout.
    warn('package-lock.json is newer than the last install: run `npm ci` if something fails to start');
  }
  if (!existsSync(path.join(root, 'packages/db/src/generated'))) {
    const code = await sup.run('build', process.execPath, ['scripts/db.mjs', 'generate'], { cwd: root, env: process.env });
    if (code !== 0) throw new Error(`generating the Prisma client failed (exit ${code})`);
  }
}
