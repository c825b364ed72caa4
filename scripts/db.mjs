#!/usr/bin/env node
// The project's database commands: generate | migrate [url] | diff [url] | new <name>.
// Wraps Prisma so nobody meets its offline failures (see docs/adr/0002-prisma-offline-migrations.md).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const [cmd, ...rest] = process.argv.slice(2);
const run = (bin, args, env = {}) => spawnSync(bin, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } }).status ?? 1;

if (cmd === 'generate') {
  const cli = path.join(root, 'node_modules/prisma/build/index.js');
  if (!existsSync(cli)) {
    console.error('db generate: prisma is not installed (run npm ci first)');
    process.exit(1);
  }
  // Generation is WASM; the CLI only insists that a schema-engine binary path exists.
  process.exit(
    run(process.execPath, [cli, 'generate', '--schema', 'prisma/schema.prisma'], {
      PRISMA_SCHEMA_ENGINE_BINARY: process.execPath,
      PRISMA_HIDE_UPDATE_MESSAGE: '1',
      CHECKPOINT_DISABLE: '1',
    }),
  );
} else if (['migrate', 'diff', 'new'].includes(cmd)) {
  process.exit(
    run(process.execPath, ['--experimental-wasm-modules', '--no-warnings', path.join(root, 'scripts/db-engine.mjs'), cmd, ...rest]),
  );
} else {
  console.error('usage: node scripts/db.mjs generate | migrate [url] | diff [url] | new <name>');
  process.exit(1);
}
