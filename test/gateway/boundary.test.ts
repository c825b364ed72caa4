import { readFileSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { root } from './fixtures';

// The gateway runs on Redis alone: it must not be able to reach the database, billing or the console.
const FORBIDDEN = ['@prisma/client', '@prisma/adapter-pg', '@tollgate/db', 'stripe', 'next', 'pg', 'postgres'];

function depsOf(pkgJsonPath: string): string[] {
  const pkg = JSON.parse(readFileSync(pkgJsonPath, 'utf8'));
  return [
    ...Object.keys(pkg.dependencies ?? {}),
    ...Object.keys(pkg.optionalDependencies ?? {}),
    ...Object.keys(pkg.peerDependencies ?? {}),
  ];
}

describe('gateway dependency boundary', () => {
  it('declares no forbidden dependency, directly or through a workspace package', () => {
    const seen = new Set<string>();
    const queue = [path.join(root, 'apps/gateway/package.json')];
    const offenders: string[] = [];
    while (queue.length) {
      const file = queue.shift()!;
      for (const dep of depsOf(file)) {
        if (FORBIDDEN.includes(dep)) offenders.push(`${path.relative(root, file)} → ${dep}`);
        if (dep.startsWith('@tollgate/') && !seen.has(dep)) {
          seen.add(dep);
          queue.push(path.join(root, 'node_modules', dep, 'package.json'));
        }
      }
    }
    expect(offenders).toEqual([]);
    expect(seen.has('@tollgate/policy')).toBe(true);
  });

  it('bundles main.ts without pulling in Prisma, packages/db, Stripe or Next', async () => {
    const result = await build({
      entryPoints: [path.join(root, 'apps/gateway/src/main.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
      outdir: path.join(root, 'apps/gateway/dist-boundary-check'),
      external: ['pino-pretty'],
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.some((i) => i.includes('apps/gateway/src/app.ts'))).toBe(true);
    // (BullMQ ships an optional PostgreSQL backend that pulls `pg` into a bundle; that is a library's
    // internals, not a path from gateway code to our database, so only our own boundaries count.)
    const bad = inputs.filter((i) => /node_modules\/(@prisma|stripe|next)\/|packages\/db\/|apps\/(console|worker)\//.test(i));
    expect(bad).toEqual([]);
  });
});
