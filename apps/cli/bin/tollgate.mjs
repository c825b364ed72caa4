#!/usr/bin/env node
// The published entry point: the bundle `npm run build -w @tollgate/cli` writes to dist/.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('tollgate: not built yet; run `npm run build -w @tollgate/cli` (or `npm run dev -w @tollgate/cli -- <args>`)\n');
  process.exit(70);
}
await import(entry.href);
