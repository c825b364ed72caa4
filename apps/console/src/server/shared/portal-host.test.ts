import { describe, expect, it } from 'vitest';
import { createPortalHostMap, hostnameOf, PortalHostname } from './portal-host';

describe('hostnameOf (the Host header a portal host is matched on)', () => {
  it('lowercases and drops the port and a trailing dot', () => {
    expect(hostnameOf('Developers.Acme.TEST:3000')).toBe('developers.acme.test');
    expect(hostnameOf('developers.acme.test.')).toBe('developers.acme.test');
  });

  it('gives null for anything that is not a DNS name', () => {
    for (const h of [
      null,
      '',
      ':80',
      '[::1]:3000',
      'a..b',
      '-a.b',
      'a-.b',
      'a b.c',
      'a/b.c',
      'a.b:123456',
      'x'.repeat(64) + '.c',
      `${'a.'.repeat(130)}c`,
    ]) {
      expect(hostnameOf(h), String(h)).toBeNull();
    }
  });
});

describe('PortalHostname (what an owner may register)', () => {
  it('accepts a host name, normalised', () => {
    expect(PortalHostname.parse('  Developers.Example.COM. ')).toBe('developers.example.com');
    expect(PortalHostname.parse('xn--bcher-kva.example')).toBe('xn--bcher-kva.example');
  });

  it('refuses URLs, ports, IPs, localhost, single labels and garbage with a reason', () => {
    const cases: Array<[string, RegExp]> = [
      ['https://developers.example.com', /host name like/],
      ['developers.example.com:8443', /host name like/],
      ['developers.example.com/docs', /host name like/],
      ['user@developers.example.com', /host name like/],
      ['10.0.0.1', /not an IP address/],
      ['portal.localhost', /localhost/],
      ['intranet', /must have a domain/],
      ['bad_host.example.com', /host name like/],
      ['<script>.example.com', /host name like/],
      ['a'.repeat(300), /at most 253/],
    ];
    for (const [value, reason] of cases) {
      const r = PortalHostname.safeParse(value);
      expect(r.success, value).toBe(false);
      expect(r.error?.issues[0]?.message, value).toMatch(reason);
    }
  });
});

describe('createPortalHostMap', () => {
  it('answers from one snapshot per TTL, shared by concurrent lookups, and reloads after it or when invalidated', async () => {
    let t = 0;
    let loads = 0;
    let rows = [{ slug: 'acme', portalHost: 'developers.acme.test' }];
    const map = createPortalHostMap(
      async () => {
        loads++;
        return rows;
      },
      { ttlMs: 1000, now: () => t },
    );
    const [a, b, c] = await Promise.all([map.lookup('developers.acme.test'), map.lookup('nope.test'), map.lookup('random.test')]);
    expect([a, b, c]).toEqual(['acme', null, null]);
    expect(loads).toBe(1);
    rows = [{ slug: 'acme', portalHost: 'docs.acme.test' }];
    t = 999;
    expect(await map.lookup('developers.acme.test')).toBe('acme');
    expect(loads).toBe(1);
    t = 1000;
    expect(await map.lookup('developers.acme.test')).toBeNull();
    expect(await map.lookup('docs.acme.test')).toBe('acme');
    expect(loads).toBe(2);
    rows = [];
    map.invalidate();
    expect(await map.lookup('docs.acme.test')).toBeNull();
    expect(loads).toBe(3);
  });

  it('keeps the last snapshot when a reload fails and retries after a short pause, not on every request', async () => {
    let t = 0;
    let fail = false;
    let loads = 0;
    const errors: unknown[] = [];
    const map = createPortalHostMap(
      async () => {
        loads++;
        if (fail) throw new Error('db down');
        return [{ slug: 'acme', portalHost: 'developers.acme.test' }];
      },
      { ttlMs: 1000, retryMs: 100, now: () => t, onError: (e) => errors.push(e) },
    );
    expect(await map.lookup('developers.acme.test')).toBe('acme');
    fail = true;
    t = 2000;
    expect(await map.lookup('developers.acme.test')).toBe('acme');
    expect(await map.lookup('developers.acme.test')).toBe('acme');
    expect(loads).toBe(2);
    expect(errors).toHaveLength(1);
    t = 2100;
    fail = false;
    expect(await map.lookup('developers.acme.test')).toBe('acme');
    expect(loads).toBe(3);
  });

  it('answers null, without a query per request, when the first load fails', async () => {
    let loads = 0;
    const map = createPortalHostMap(
      async () => {
        loads++;
        throw new Error('db down');
      },
      { retryMs: 60_000 },
    );
    expect(await map.lookup('developers.acme.test')).toBeNull();
    expect(await map.lookup('developers.acme.test')).toBeNull();
    expect(loads).toBe(1);
  });
});
