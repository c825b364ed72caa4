// The README is the first thing a new user runs commands from: it must open with the two
// commands, point only at files that exist, name only scripts that exist, and document the
// same variables as .env.example.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CliEnv } from '../../apps/cli/src/env';
import { ConsoleEnv } from '../../apps/console/src/env';
import { DemoUpstreamEnv } from '../../apps/demo-upstream/src/env';
import { gatewayEnv } from '../../apps/gateway/src/env';
import { WorkerCliEnv, WorkerEnv } from '../../apps/worker/src/env';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
const scripts = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;

const VAR = /\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b|\b(?:PORT)\b/g;

describe('README.md', () => {
  it('opens with the start and test commands, before anything else', () => {
    const blocks = [...readme.matchAll(/```(?:sh|bash)?\n([\s\S]*?)```/g)].map((m) => m[1]!.trim());
    expect(blocks.slice(0, 2)).toEqual(['npm start', 'npm test']);
    const beforeFirst = readme.slice(0, readme.indexOf('```'));
    expect(beforeFirst.split('\n').filter((l) => l.trim()).length).toBeLessThanOrEqual(2);
    expect(scripts.start).toBeTruthy();
    expect(scripts.test).toBeTruthy();
    // CI runs exactly the README's test command.
    expect(readFileSync(path.join(root, '.ci/run'), 'utf8')).toMatch(/^npm test\b/m);
  });

  it('links only to files that exist, here and in the overview docs', () => {
    const docs = [
      'README.md',
      'docs/architecture.md',
      'docs/adr/README.md',
      'docs/perf-notes.md',
      'docs/adr/0004-gateway-request-path.md',
      'docs/adr/0001-monorepo-and-typescript-source-packages.md',
      'docs/adr/0002-prisma-offline-migrations.md',
    ].map((f) => path.join(root, f));
    const missing: string[] = [];
    for (const file of docs) {
      for (const m of readFileSync(file, 'utf8').matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!.split('#')[0]!;
        if (!target || /^[a-z]+:/.test(target)) continue;
        if (!existsSync(path.resolve(path.dirname(file), target))) missing.push(`${path.relative(root, file)} → ${target}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('names only npm scripts that exist, at the root or in the workspace it names', () => {
    const workspaceScripts = (name: string): Record<string, string> => {
      for (const top of ['apps', 'packages']) {
        for (const dir of readdirSync(path.join(root, top))) {
          const file = path.join(root, top, dir, 'package.json');
          if (!existsSync(file)) continue;
          const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name: string; scripts?: Record<string, string> };
          if (pkg.name === name) return pkg.scripts ?? {};
        }
      }
      return {};
    };
    const named = [...readme.matchAll(/npm run ([a-z][\w:-]*)(?: -w (@[\w/-]+))?/g)].map((m) => ({ script: m[1]!, workspace: m[2] }));
    expect(named.length).toBeGreaterThan(0);
    const missing = named.filter(({ script, workspace }) => !(script in (workspace ? workspaceScripts(workspace) : scripts)));
    expect(missing).toEqual([]);
  });

  const example = readFileSync(path.join(root, '.env.example'), 'utf8');
  const inExample = new Set([...example.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]!));
  const configSection = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('## Running it locally'));
  const inReadme = new Set([...configSection.matchAll(/^\| `([^|]+)` +\|/gm)].flatMap((m) => [...m[1]!.matchAll(VAR)].map((v) => v[0])));

  it('documents the same environment variables as .env.example', () => {
    expect(inReadme.size).toBeGreaterThan(20);
    expect([...inExample].filter((v) => !inReadme.has(v)).sort(), 'in .env.example, not in the README').toEqual([]);
    expect([...inReadme].filter((v) => !inExample.has(v)).sort(), 'in the README, not in .env.example').toEqual([]);
  });

  it("documents every variable each app's env schema declares, in the README and .env.example", () => {
    // The portal's schema is module-private in a file that imports next/headers: read from its source.
    const portalSource = readFileSync(path.join(root, 'apps/console/src/server/portal/next.ts'), 'utf8');
    const portalShape = portalSource.slice(
      portalSource.indexOf('const PortalEnv = {'),
      portalSource.indexOf('\n};', portalSource.indexOf('const PortalEnv = {')),
    );
    const portal = [...portalShape.matchAll(/^ {2}([A-Z][A-Z0-9_]+):/gm)].map((m) => m[1]!);
    const schemas: Record<string, readonly string[]> = {
      'apps/gateway/src/env.ts': Object.keys(gatewayEnv),
      'apps/worker/src/env.ts (WorkerEnv)': Object.keys(WorkerEnv),
      'apps/worker/src/env.ts (WorkerCliEnv)': Object.keys(WorkerCliEnv),
      'apps/console/src/env.ts': Object.keys(ConsoleEnv),
      'apps/console/src/server/portal/next.ts': portal,
      'apps/demo-upstream/src/env.ts': Object.keys(DemoUpstreamEnv),
      'apps/cli/src/env.ts': Object.keys(CliEnv),
    };
    expect(portal).toContain('SMTP_URL');
    const undocumented: string[] = [];
    for (const [where, names] of Object.entries(schemas)) {
      expect(names.length, where).toBeGreaterThan(0);
      for (const name of names) {
        if (!inReadme.has(name)) undocumented.push(`${where}: ${name} not in the README's configuration tables`);
        if (!inExample.has(name)) undocumented.push(`${where}: ${name} not in .env.example`);
      }
    }
    expect(undocumented).toEqual([]);
  });
});

describe('docs/architecture.md', () => {
  const architecture = readFileSync(path.join(root, 'docs/architecture.md'), 'utf8');
  const section = architecture.slice(architecture.indexOf('## Where behaviour lives'), architecture.indexOf('## Key directories'));
  const rows = [...section.matchAll(/^\| ([^|]+?) +\| \[([^\]]+)\]\(([^)]+)\) +\| ([^|]+?) +\|$/gm)].map((m) => ({
    behaviour: m[1]!,
    file: m[2]!,
    link: m[3]!,
    names: [...m[4]!.matchAll(/`([\w.]+)`/g)].map((n) => n[1]!),
  }));

  it('opens with the table of where behaviour lives, and the README links to it', () => {
    expect(architecture.match(/^## .*/m)?.[0]).toBe('## Where behaviour lives');
    expect(rows.length).toBeGreaterThanOrEqual(15);
    expect(readme).toContain('](docs/architecture.md)');
  });

  it('names only files that exist, each linked to itself', () => {
    expect(rows.filter((r) => !existsSync(path.join(root, r.file)) || path.join(root, 'docs', r.link) !== path.join(root, r.file))).toEqual(
      [],
    );
  });

  it('names only functions and classes defined in the file beside them', () => {
    const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const missing: string[] = [];
    for (const { file, names } of rows) {
      expect(names.length, file).toBeGreaterThan(0);
      const source = existsSync(path.join(root, file)) ? readFileSync(path.join(root, file), 'utf8') : '';
      for (const name of names) {
        const [owner, member] = name.split('.') as [string, string | undefined];
        const declared = new RegExp(`^export (?:async )?(?:function\\*? |class |const |let )${escape(owner)}\\b`, 'm').exec(source);
        const found =
          declared &&
          (!member || new RegExp(`^ {2}(?:(?:public|private|async|static) )*${escape(member)}\\(`, 'm').test(source.slice(declared.index)));
        if (!found) missing.push(`${file}: ${name}`);
      }
    }
    expect(missing).toEqual([]);
  });
});

describe('docs/adr', () => {
  const dir = path.join(root, 'docs/adr');
  const records = readdirSync(dir).filter((f) => /^\d{4}-.*\.md$/.test(f));
  const index = readFileSync(path.join(dir, 'README.md'), 'utf8');

  it('every record opens with its status', () => {
    const lacking = records.filter(
      (f) => !/^(?:Status:|## Status\b)/m.test(readFileSync(path.join(dir, f), 'utf8').split('\n').slice(0, 6).join('\n')),
    );
    expect(lacking).toEqual([]);
  });

  it('the index lists every record, once', () => {
    expect(records.length).toBeGreaterThan(15);
    expect(records.filter((f) => index.split(`](${f})`).length !== 2)).toEqual([]);
  });
});
