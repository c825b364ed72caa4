// Installs Debian/Ubuntu packages for `npm start` and `npm test` when they run as root on a
// machine with apt: what a fresh machine lacks (Redis, PostgreSQL, Chromium) is one step away.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

function onPath(bin) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    try {
      accessSync(path.join(dir, bin), constants.X_OK);
      return true;
    } catch {
      /* not here */
    }
  }
  return false;
}

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * Installs Debian/Ubuntu packages when this process is root and apt-get exists.
 * @returns {string | null} null when installed, else why not
 */
export function aptInstall(packages, log) {
  if (!isRoot()) return 'not running as root';
  if (!onPath('apt-get')) return 'apt-get is not available';
  log(`installing ${packages.join(' ')} with apt-get (once)…`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const update = spawnSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'inherit', 'inherit'], env });
  if (update.status !== 0) return `apt-get update failed (exit ${update.status})`;
  const install = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env,
  });
  return install.status === 0 ? null : `apt-get install ${packages.join(' ')} failed (exit ${install.status})`;
}
