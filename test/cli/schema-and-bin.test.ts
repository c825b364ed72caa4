// The JSON Schema editors validate with is generated from the zod schemas the CLI validates with
// (one source of truth), agrees with them, and the published `tollgate` bin runs as a process.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '@tollgate/db';
import { testDb } from '../harness/db';
import { baseChildEnv, freePort } from '../harness';
import { makeTenant, makeToken } from '../console/fixtures';
import { buildJsonSchema, ConfigFile } from '../../apps/cli/src/config-schema';
import { parseConfig, renderConfig } from '../../apps/cli/src/config-file';
import { startAdminServer, type AdminServer } from './admin-server';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const cliDir = path.join(root, 'apps/cli');
const committed = JSON.parse(readFileSync(path.join(cliDir, 'schema/tollgate.schema.json'), 'utf8')) as Record<string, unknown>;
const example = readFileSync(path.join(cliDir, 'examples/tollgate.yaml'), 'utf8');
const ajv = new Ajv2020({ strict: false, allErrors: true });
const validate = ajv.compile(committed);

describe('the configuration file JSON Schema', () => {
  it('is the one generated from the zod schemas (run `npm run schema -w @tollgate/cli` after changing them)', () => {
    expect(committed).toEqual(JSON.parse(JSON.stringify(buildJsonSchema())));
  });

  it('accepts the example and an exported file, as the CLI does', () => {
    expect(validate(parse(example)), JSON.stringify(validate.errors)).toBe(true);
    const config = parseConfig(example, { env: { WEATHER_UPSTREAM_TOKEN: 'Bearer x' } });
    const text = renderConfig(config, { schemaRef: '../schema/tollgate.schema.json' });
    expect(validate(parse(text)), JSON.stringify(validate.errors)).toBe(true);
    expect(parseConfig(text, { env: {} })).toEqual(config);
  });

  it('rejects what the CLI rejects: unknown fields, wrong types and values out of range', () => {
    const base = parse(example) as { apis: Array<Record<string, unknown>>; plans: Array<Record<string, unknown>> };
    const broken = [
      { ...base, extra: true },
      { ...base, apis: [{ ...base.apis[0], retires: 2 }] },
      { ...base, apis: [{ ...base.apis[0], basePath: 'weather' }] },
      { ...base, apis: [{ ...base.apis[0], targets: [] }] },
      { ...base, plans: [{ ...base.plans[0], rateLimit: 0 }] },
      { ...base, plans: [{ ...base.plans[0], quotaMode: 'SOMETIMES' }] },
      { ...base, version: 2 },
    ];
    for (const doc of broken) {
      expect(validate(doc), JSON.stringify(doc).slice(0, 200)).toBe(false);
      expect(ConfigFile.safeParse(doc).success).toBe(false);
    }
  });

  it('is what the example points editors at', () => {
    expect(example.split('\n')[0]).toBe('# yaml-language-server: $schema=../schema/tollgate.schema.json');
  });
});

describe('the tollgate bin', () => {
  let db: Db;
  let server: AdminServer;
  let dir: string;
  const bin = path.join(cliDir, 'bin/tollgate.mjs');

  beforeAll(async () => {
    db = testDb();
    server = await startAdminServer(db);
    dir = mkdtempSync(path.join(tmpdir(), 'tg-bin-'));
    await run(process.execPath, [path.join(root, 'scripts/bundle.mjs'), 'src/main.ts'], { cwd: cliDir });
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await db?.$disconnect();
  });

  const tollgate = (args: string[], env: Record<string, string> = {}) =>
    run(process.execPath, [bin, ...args], { cwd: dir, env: { ...baseChildEnv(), ...env } }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, stdout: err.stdout, stderr: err.stderr }),
    );

  it('is declared in package.json and exports a workspace over HTTP', async () => {
    const pkg = JSON.parse(readFileSync(path.join(cliDir, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(pkg.bin).toEqual({ tollgate: './bin/tollgate.mjs' });
    const t = await makeTenant(db);
    const res = await tollgate(['export', '--schema-ref', 'https://example.com/tollgate.schema.json'], {
      TOLLGATE_URL: server.url,
      TOLLGATE_TOKEN: await makeToken(t, 'VIEWER'),
    });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.split('\n')[0]).toBe('# yaml-language-server: $schema=https://example.com/tollgate.schema.json');
    expect(parse(res.stdout)).toEqual({
      version: 1,
      settings: { currency: 'usd', allowPrivateTargets: false, requireDeveloperApproval: false },
      apis: [],
      plans: [],
    });
  });

  it('ends a bad file with exit 65 and one line per problem, never a stack trace', async () => {
    writeFileSync(path.join(dir, 'bad.yaml'), 'version: 1\napis:\n  - slug: X!\n');
    const res = await tollgate(['validate', 'bad.yaml']);
    expect(res.code).toBe(65);
    expect(res.stderr).toMatch(/^tollgate: bad\.yaml:3: apis\[0\]\.slug: may use a-z, 0-9 and inner dashes only\n/);
    expect(res.stderr).not.toMatch(/\n\s+at /);
    const closed = `http://127.0.0.1:${await freePort()}`;
    const unreachable = await tollgate(['export'], { TOLLGATE_URL: closed, TOLLGATE_TOKEN: `tgat_${'a'.repeat(40)}` });
    expect(unreachable).toMatchObject({ code: 69, stderr: `tollgate: cannot reach the console at ${closed}: connection refused\n` });
  });
});
