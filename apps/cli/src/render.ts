import { routeKey } from './config-file';
import type { Change, FieldChange, Plan } from './plan';

const MAX_VALUE = 100;

function show(v: unknown): string {
  const text = v === undefined ? 'unset' : JSON.stringify(v);
  return text.length > MAX_VALUE ? `${text.slice(0, MAX_VALUE - 1)}…` : text;
}

function fieldLines(changes: FieldChange[], indent: string): string[] {
  return changes.map((c) => `${indent}${c.field}: ${show(c.from)} → ${show(c.to)}`);
}

/** One line (plus field lines) per change, as `diff` prints it and `apply` announces it. */
export function describeChange(c: Change): { head: string; details: string[] } {
  switch (c.kind) {
    case 'settings':
      return { head: '~ settings', details: fieldLines(c.changes, '    ') };
    case 'api.create':
      return {
        head: `+ api ${c.api.slug} (${c.api.basePath}, ${c.api.routes.length} route${c.api.routes.length === 1 ? '' : 's'})`,
        details: [],
      };
    case 'api.update':
      return { head: `~ api ${c.api.slug}`, details: fieldLines(c.changes, '    ') };
    case 'api.delete':
      return { head: `- api ${c.slug}`, details: [] };
    case 'route.create':
      return { head: `+ route ${routeKey(c.route)} of api ${c.apiSlug}`, details: [] };
    case 'route.update':
      return { head: `~ route ${routeKey(c.route)} of api ${c.apiSlug}`, details: fieldLines(c.changes, '    ') };
    case 'route.delete':
      return { head: `- route ${routeKey(c.route)} of api ${c.apiSlug}`, details: [] };
    case 'plan.create':
      return { head: `+ plan ${c.plan.slug}`, details: [] };
    case 'plan.update':
      return { head: `~ plan ${c.plan.slug}`, details: fieldLines(c.changes, '    ') };
    case 'plan.delete':
      return { head: `- plan ${c.slug} (archived instead if it has subscribers)`, details: [] };
  }
}

export function summarise(plan: Plan): string {
  const count = (p: string) =>
    plan.changes.filter((c) => (c.kind === 'settings' ? p === '~' : describeChange(c).head.startsWith(p))).length;
  const [add, change, remove] = [count('+'), count('~'), count('-')];
  if (add + change + remove === 0) return 'No changes: the workspace matches the file.';
  return `${add} to create, ${change} to update, ${remove} to delete.`;
}

export function renderPlan(plan: Plan): string {
  const lines: string[] = [];
  for (const c of plan.changes) {
    const d = describeChange(c);
    lines.push(d.head, ...d.details);
  }
  for (const k of plan.kept) lines.push(`  ${k.kind} ${k.slug}: in the workspace, not in the file; kept (--prune removes it)`);
  lines.push(summarise(plan));
  return `${lines.join('\n')}\n`;
}
