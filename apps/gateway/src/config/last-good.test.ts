import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { PolicySnapshot } from '@tollgate/policy';
import { decodeLastGood, encodeLastGood, LastGood } from './last-good';

function snapshot(tenantId: string, version = 1): PolicySnapshot {
  return PolicySnapshot.parse({
    schemaVersion: 1,
    tenantId,
    tenantSlug: tenantId.replace(/_/g, '-'),
    version,
    publishedAt: new Date(0).toISOString(),
    hosts: [],
    allowPrivateTargets: true,
    apis: [],
    plans: [],
  });
}

function setup(maxBytes = 1024 * 1024) {
  const lines: string[] = [];
  const logger = pino({ level: 'warn' }, new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }));
  const dir = path.join(mkdtempSync(path.join(tmpdir(), 'tg-lastgood-')), 'state');
  const store = new LastGood({ dir, logger, maxBytes, debounceMs: 60_000 });
  return { store, dir, lines };
}

describe('last good configuration file', () => {
  it('round-trips snapshots through an atomically written, checksummed file', async () => {
    const { store, dir } = setup();
    store.schedule(() => [snapshot('ten_a'), snapshot('ten_b', 7)]);
    expect(existsSync(store.file)).toBe(false);
    await store.flush();
    expect(readdirSync(dir)).toEqual(['policy-snapshots.v1']);
    expect(store.read().map((s) => [s.tenantId, s.version])).toEqual([
      ['ten_a', 1],
      ['ten_b', 7],
    ]);
  });

  it('writes a burst of changes once, with the latest state', async () => {
    const { store } = setup();
    for (let v = 1; v <= 500; v++) store.schedule(() => [snapshot('ten_a', v)]);
    await store.flush();
    expect(store.stats.writes).toBe(1);
    expect(store.read()[0]!.version).toBe(500);
  });

  it('ignores a missing file silently and a truncated or corrupt one with a warning, never throwing', async () => {
    const { store, lines } = setup();
    expect(store.read()).toEqual([]);
    expect(lines).toEqual([]);
    store.schedule(() => [snapshot('ten_a')]);
    await store.flush();
    const text = readFileSync(store.file, 'utf8');
    writeFileSync(store.file, text.slice(0, text.length - 10));
    expect(store.read()).toEqual([]);
    writeFileSync(store.file, text.replace('ten_a', 'ten_b'));
    expect(store.read()).toEqual([]);
    expect(lines.filter((l) => l.includes('checksum mismatch'))).toHaveLength(2);
  });

  it('refuses hostile contents: wrong format, garbage JSON with a valid checksum, invalid snapshots, a huge file', async () => {
    expect(decodeLastGood('{"not":"ours"}')).toEqual({ error: 'unknown format' });
    expect(decodeLastGood(encodeLastGood([]).replace('[]', '['))).toHaveProperty('error');
    const garbage = '{{{not json';
    const sum = encodeLastGood([])
      .split('\n')[0]!
      .replace(/sha256=.*/, '');
    expect(decodeLastGood(`${sum}sha256=${createHash('sha256').update(garbage).digest('hex')}\n${garbage}`)).toEqual({
      error: 'unreadable JSON',
    });
    const mixed = encodeLastGood([snapshot('ten_a'), { tenantId: 'x' } as unknown as PolicySnapshot, snapshot('ten_a', 2)]);
    const res = decodeLastGood(mixed);
    expect('snapshots' in res && res.snapshots.map((s) => s.tenantId)).toEqual(['ten_a']);
    expect('skipped' in res && res.skipped).toBe(2);

    const { store, lines } = setup(2048);
    store.schedule(() => [snapshot('ten_a')]);
    await store.flush();
    writeFileSync(store.file, encodeLastGood(Array.from({ length: 50 }, (_, i) => snapshot(`ten_${i}`))));
    expect(store.read()).toEqual([]);
    expect(lines.some((l) => l.includes('too large'))).toBe(true);
    // A configuration too large to save leaves the previous copy in place.
    store.schedule(() => Array.from({ length: 50 }, (_, i) => snapshot(`ten_${i}`)));
    await store.flush();
    expect(store.stats.failures).toBe(1);
  });

  it('a directory it cannot create is a warning, not a crash', async () => {
    const { lines, dir } = setup();
    const blocker = path.join(dir, '..', 'file');
    writeFileSync(blocker, 'x');
    const store = new LastGood({ dir: path.join(blocker, 'state'), logger: pino({ level: 'silent' }), maxBytes: 1024, debounceMs: 10 });
    store.schedule(() => [snapshot('ten_a')]);
    await expect(store.flush()).resolves.toBeUndefined();
    expect(store.stats.failures).toBe(1);
    expect(lines).toEqual([]);
  });
});
