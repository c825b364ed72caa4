// Finds a Chromium for the browser suites, and installs Debian's where that is possible
// (root with apt). Node built-ins only: `npm test` runs this before anything else.
import { accessSync, constants, existsSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { aptInstall } from './apt.mjs';

function executable(file) {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(bin) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && executable(path.join(dir, bin))) return path.join(dir, bin);
  }
  return null;
}

/** A browser Playwright downloaded earlier (never downloaded here), newest first. */
function playwrightCache() {
  const base = process.env.PLAYWRIGHT_BROWSERS_PATH || path.join(os.homedir(), '.cache/ms-playwright');
  if (!existsSync(base)) return null;
  const dirs = readdirSync(base)
    .filter((d) => /^chromium-\d+$/.test(d))
    .sort((a, b) => Number(b.split('-')[1]) - Number(a.split('-')[1]));
  for (const d of dirs) {
    for (const sub of ['chrome-linux64/chrome', 'chrome-linux/chrome']) {
      const file = path.join(base, d, sub);
      if (executable(file)) return file;
    }
  }
  return null;
}

/**
 * CHROMIUM_PATH when set (and it must then exist), else the first of /usr/bin/chromium,
 * chromium, chromium-browser, google-chrome(-stable) on the PATH, else Playwright's cache.
 * @returns {{ path: string } | { error: string } | null}
 */
export function findChromium(env = process.env) {
  if (env.CHROMIUM_PATH) {
    return executable(env.CHROMIUM_PATH)
      ? { path: env.CHROMIUM_PATH }
      : { error: `CHROMIUM_PATH=${env.CHROMIUM_PATH} is not an executable file` };
  }
  if (executable('/usr/bin/chromium')) return { path: '/usr/bin/chromium' };
  for (const bin of ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable']) {
    const found = onPath(bin);
    if (found) return { path: found };
  }
  const cached = playwrightCache();
  return cached ? { path: cached } : null;
}

/**
 * A Chromium for the browser suites: found, or installed from Debian's packages when this
 * runs as root with apt. Never a download of Playwright's own browser.
 * @returns {{ path: string } | { error: string }}
 */
export function ensureChromium(log) {
  const found = findChromium();
  if (found) return found;
  const why = aptInstall(['chromium', 'fonts-dejavu-core'], log);
  if (why === null) {
    const installed = findChromium();
    if (installed) return installed;
  }
  return {
    error: `no Chromium found for the browser tests (${why ?? 'installed, yet not found'}): install Debian's chromium (sudo apt-get install chromium) or set CHROMIUM_PATH`,
  };
}
