// The architecture's boundaries as failing tests, independent of lint: the gateway's
// dependency tree holds no database, billing or UI library, and no app (or package) imports
// an app. eslint.config.js says the same per import; this also catches a dependency that
// arrives through a workspace package, and relative paths of any depth.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const GATEWAY_FORBIDDEN = ['@prisma/client', 'prisma', '@tollgate/db', 'stripe', 'next'];

type Pkg = {
  name: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
};
const readPkg = (dir: string): Pkg => JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as Pkg;
const allDeps = (p: Pkg) => Object.keys({ ...p.dependencies, ...p.devDependencies, ...p.peerDependencies, ...p.optionalDependencies });

const workspaceDirs = ['apps', 'packages'].flatMap((top) =>
  readdirSync(path.join(root, top))
    .map((d) => path.join(root, top, d))
    .filter((d) => existsSync(path.join(d, 'package.json'))),
);
const workspaces = new Map(workspaceDirs.map((d) => [readPkg(d).name, d]));
const appDirs = workspaceDirs.filter((d) => d.startsWith(path.join(root, 'apps') + path.sep));
const appNames = new Set(appDirs.map((d) => readPkg(d).name));

/** Every npm dependency a workspace brings in, through the workspace packages it depends on too. */
function dependencyClosure(name: string, seen = new Set<string>()): Map<string, string> {
  const found = new Map<string, string>(); // dependency → the workspace that declares it
  if (seen.has(name)) return found;
  seen.add(name);
  const dir = workspaces.get(name);
  if (!dir) return found;
  for (const dep of allDeps(readPkg(dir))) {
    if (!found.has(dep)) found.set(dep, name);
    if (workspaces.has(dep)) for (const [d, via] of dependencyClosure(dep, seen)) if (!found.has(d)) found.set(d, via);
  }
  return found;
}

const SOURCE = /\.(ts|tsx|mts|cts|js|jsx|mjs|cjs)$/;
const SKIP = new Set(['node_modules', 'dist', '.next', '.turbo', 'generated', 'coverage']);
function sourceFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((e) => {
    if (SKIP.has(e)) return [];
    const p = path.join(dir, e);
    return statSync(p).isDirectory() ? sourceFiles(p) : SOURCE.test(e) ? [p] : [];
  });
}

const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+|\bexport\s+\*\s+from\s*)['"]([^'"\n]+)['"]/gm;
function importSpecifiers(code: string): string[] {
  return [...code.matchAll(SPECIFIER)].map((m) => m[1]!);
}

/** The app (by package name) a specifier in `file` points into, if it is not the file's own app. */
function foreignAppTarget(file: string, spec: string): string | null {
  const ownApp = appDirs.find((d) => file.startsWith(d + path.sep));
  if (spec.startsWith('.')) {
    const target = path.resolve(path.dirname(file), spec);
    const app = appDirs.find((d) => target === d || target.startsWith(d + path.sep));
    return app && app !== ownApp ? readPkg(app).name : null;
  }
  const pkgName = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
  if (appNames.has(pkgName) && (!ownApp || readPkg(ownApp).name !== pkgName)) return pkgName;
  return null;
}

describe('architecture boundaries', () => {
  it('keeps PostgreSQL, Prisma, Stripe and Next.js out of the gateway, directly or through a workspace package', () => {
    expect(workspaces.has('@tollgate/gateway')).toBe(true);
    const closure = dependencyClosure('@tollgate/gateway');
    const offending = GATEWAY_FORBIDDEN.filter((d) => closure.has(d)).map((d) => `${d} (declared by ${closure.get(d)})`);
    expect(offending).toEqual([]);
  });

  it('finds import specifiers in every form the scanner relies on', () => {
    const code = [
      "import a from '@tollgate/worker';",
      "import type { B } from '../../console/src/b';",
      "export * from './c';",
      "const d = await import('@tollgate/gateway/x');",
      "const e = require('../../../apps/worker/src/e');",
      "import './side-effect';",
    ].join('\n');
    expect(importSpecifiers(code)).toEqual([
      '@tollgate/worker',
      '../../console/src/b',
      './c',
      '@tollgate/gateway/x',
      '../../../apps/worker/src/e',
      './side-effect',
    ]);
    const gatewayFile = path.join(root, 'apps/gateway/src/proxy/forward.ts');
    expect(foreignAppTarget(gatewayFile, '../../../worker/src/main')).toBe('@tollgate/worker');
    expect(foreignAppTarget(gatewayFile, '../app')).toBeNull();
    expect(foreignAppTarget(path.join(root, 'packages/policy/src/index.ts'), '@tollgate/gateway')).toBe('@tollgate/gateway');
  });

  it('has no app or package importing an app', () => {
    const files = workspaceDirs.flatMap(sourceFiles);
    expect(files.length).toBeGreaterThan(0);
    const violations: string[] = [];
    for (const file of files) {
      for (const spec of importSpecifiers(readFileSync(file, 'utf8'))) {
        const target = foreignAppTarget(file, spec);
        if (target) violations.push(`${path.relative(root, file)} imports ${spec} (${target})`);
      }
    }
    expect(violations).toEqual([]);
  });
});
