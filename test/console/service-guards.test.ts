// Every console service that acts for a member checks the member's permission before it reads
// or writes: the UI, server actions and the REST API all go through these functions, so one
// missing guard is a hole in all three. Read from the source, so a new service without a guard
// fails here before anyone has to think of a test for it.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const serviceDirs = ['apps/console/src/server/console', 'apps/console/src/server/shared'].map((d) => path.join(root, d));

/**
 * Exported functions that touch the database without a member's permission check, and why
 * that is right. Anything else that reads or writes must check first.
 */
const PUBLIC: Record<string, string> = {
  signUpTenant: 'creates the account and its first tenant: there is no member yet',
  logInUser: 'checks a password: there is no member yet',
  listUserTenants: "a signed-in user's own memberships, by user id",
  acceptInvitation: 'the invitation token is the permission',
  authenticateAccessToken: 'turns a bearer token into the context the guards check',
  ensureInternalConsumer: "called inside guarded services' transactions (issueKey, the test call)",
  recordAudit: 'writes the audit row inside the transaction of a guarded service',
  replaceKeyInTx: 'runs inside the transaction of rollKey (guarded) and the portal (developer-scoped)',
  allowPrivate: 'reads a tenant flag for createApi/updateApi, after their guard',
  sourceSql: 'builds the rollup query for queryUsage/queryTopUsage, after their guard',
  checkHealth: 'the unauthenticated /healthz probe: one SELECT 1, no tenant data',
  portalHostMap: 'the Host → tenant routing map (portal hosts are public routing data), shared by src/proxy.ts and settings',
  createUsageExportHandler: "the CSV route: finds the session's membership, then calls exportUsageCsv (guarded)",
};

type Fn = { file: string; name: string; params: string; body: string };

function exportedFunctions(): Fn[] {
  const out: Fn[] = [];
  for (const dir of serviceDirs) {
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))) {
      const source = readFileSync(path.join(dir, file), 'utf8');
      // Top-level functions end at the first line that is a lone closing brace.
      for (const m of source.matchAll(/^export (?:async )?function (\w+)\s*(?:<[^\n]*?>)?\(([\s\S]*?)\)(?::[^\n]*)? \{\n([\s\S]*?)^\}/gm)) {
        out.push({ file: `${path.basename(dir)}/${file}`, name: m[1]!, params: m[2]!, body: m[3]! });
      }
    }
  }
  return out;
}

const DB_ACCESS = /\b(?:ctx\.db|db|tx)\.(?:\$?[a-zA-Z]+)\b/;
const GUARD = /\brequire(?:Permission|Role)\(ctx\b/;

describe('console services', () => {
  const fns = exportedFunctions();

  it('are found where the test looks', () => {
    expect(fns.length).toBeGreaterThan(40);
    expect(fns.map((f) => f.name)).toEqual(expect.arrayContaining(['issueKey', 'updatePlan', 'queryUsage', 'requirePermission']));
  });

  it('check a permission (or call a service that does) before they read or write', () => {
    // A service is guarded when it calls requirePermission/requireRole, or another guarded
    // service with its ctx, before its first database access.
    const guarded = new Set<string>();
    const guardIndex = (fn: Fn): number => {
      const calls = [GUARD, ...[...guarded].map((g) => new RegExp(`\\b${g}\\(ctx\\b`))]
        .map((re) => re.exec(fn.body)?.index ?? -1)
        .filter((i) => i >= 0);
      return calls.length ? Math.min(...calls) : -1;
    };
    for (let changed = true; changed;) {
      changed = false;
      for (const fn of fns) {
        if (guarded.has(fn.name) || !/\bServiceContext\b/.test(fn.params)) continue;
        const at = guardIndex(fn);
        const firstAccess = fn.body.search(DB_ACCESS);
        if (at >= 0 && (firstAccess < 0 || at < firstAccess)) {
          guarded.add(fn.name);
          changed = true;
        }
      }
    }
    const unguarded = fns
      .filter((fn) => !guarded.has(fn.name) && !(fn.name in PUBLIC))
      .filter((fn) => /\bServiceContext\b/.test(fn.params) || DB_ACCESS.test(fn.body))
      .filter((fn) => !['requirePermission', 'requireRole'].includes(fn.name))
      .map((fn) => `${fn.file}: ${fn.name}`);
    expect(unguarded).toEqual([]);
  });

  it('list as public only functions that exist and would otherwise fail', () => {
    const byName = new Map(fns.map((f) => [f.name, f]));
    const stale = Object.keys(PUBLIC).filter((name) => {
      const fn = byName.get(name);
      return !fn || !(DB_ACCESS.test(fn.body) || /\bServiceContext\b/.test(fn.params));
    });
    expect(stale).toEqual([]);
  });
});
