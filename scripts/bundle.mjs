#!/usr/bin/env node
// Bundles an app's entry points with its workspace packages (which ship TypeScript source)
// into dist/, leaving npm dependencies external. Run from the app's folder.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const entries = process.argv.slice(2);
if (!entries.length) {
  console.error('usage: bundle.mjs <entry.ts> [...]');
  process.exit(1);
}
const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const external = Object.keys(pkg.dependencies ?? {}).filter((d) => !d.startsWith('@tollgate/'));
// Workspace packages' own npm dependencies stay external too.
for (const dep of Object.keys(pkg.dependencies ?? {}).filter((d) => d.startsWith('@tollgate/'))) {
  const inner = JSON.parse(readFileSync(path.join(root, 'node_modules', dep, 'package.json'), 'utf8'));
  for (const d of Object.keys(inner.dependencies ?? {})) if (!d.startsWith('@tollgate/')) external.push(d);
}
await build({
  entryPoints: entries,
  outdir: 'dist',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  external: [...new Set(external), '@prisma/*', 'pg-native'],
  banner: { js: "import { createRequire as __tgRequire } from 'node:module'; const require = __tgRequire(import.meta.url);" },
  logLevel: 'warning',
});
