import { describe, expect, it } from 'vitest';
import { compileCidrs, CorsPolicy, IpRules, MAX_IP_RULES, parseCidr, parseIpv6, Scopes } from './index';

describe('parseCidr', () => {
  it('reads IPv4 and IPv6 networks and single addresses, masking the host bits', () => {
    expect(parseCidr('10.1.2.3/16')).toEqual({ family: 4, bits: 16, net: 0x0a010000 });
    expect(parseCidr('203.0.113.7')).toEqual({ family: 4, bits: 32, net: 0xcb007107 });
    expect(parseCidr('2001:db8::1/32')).toMatchObject({ family: 6, bits: 32 });
    expect(parseCidr('::1')).toMatchObject({ family: 6, bits: 128 });
    // IPv4-mapped IPv6 is IPv4.
    expect(parseCidr('::ffff:10.0.0.0/104')).toEqual({ family: 4, bits: 8, net: 0x0a000000 });
  });

  it('refuses malformed input', () => {
    for (const bad of [
      '',
      '10.0.0.0/33',
      '10.0.0.0/',
      '10.0.0.0/-1',
      '10.0.0.0/08',
      '10.0.0',
      '10.0.0.256',
      '010.0.0.1',
      '1.2.3.4.5',
      '::1/129',
      '1::2::3',
      ':1',
      '2001:db8:::1',
      '12345::',
      'g::1',
      'localhost',
      '10.0.0.0/8 ',
      ' 10.0.0.0/8',
      '1:2:3:4:5:6:7:8:9',
      'a'.repeat(100),
      '::ffff:1.2.3',
    ]) {
      expect(parseCidr(bad), bad).toBeNull();
    }
    expect(parseIpv6('1:2:3:4:5:6:1.2.3.4')).not.toBeNull();
  });
});

describe('compileCidrs', () => {
  it('matches addresses of either family, mapped spellings and bracketed/zoned IPv6 included', () => {
    const m = compileCidrs(['10.0.0.0/8', '192.0.2.1', '2001:db8:bad::/48', '::1']);
    expect(m.size).toBe(4);
    for (const yes of [
      '10.255.1.2',
      '192.0.2.1',
      '::ffff:10.1.1.1',
      '2001:db8:bad:ffff::1',
      '2001:DB8:BAD::',
      '[::1]',
      '::1',
      'fe80::1%eth0'.replace('fe80::1', '::1'),
    ])
      expect(m.has(yes), yes).toBe(true);
    for (const no of ['11.0.0.1', '192.0.2.2', '2001:db8:bae::1', '::2', 'garbage', '', '999.1.1.1']) expect(m.has(no), no).toBe(false);
  });

  it('stays fast for a large list: one set lookup per distinct prefix length', () => {
    const list = Array.from({ length: MAX_IP_RULES }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.0/24`);
    const m = compileCidrs(list);
    const t0 = performance.now();
    let hits = 0;
    for (let i = 0; i < 100_000; i++) if (m.has(`10.${i & 15}.${i & 255}.9`)) hits++;
    const perCall = (performance.now() - t0) / 100_000;
    expect(hits).toBe(100_000);
    expect(perCall).toBeLessThan(0.05); // ms: far under, whatever the machine's load
  });
});

describe('edge policy schemas', () => {
  it('refuses "*" with credentials, and "*" among other origins', () => {
    const base = { methods: [], headers: [], exposedHeaders: [], maxAgeSeconds: 60 };
    const star = CorsPolicy.safeParse({ ...base, origins: ['*'], credentials: true });
    expect(star.success).toBe(false);
    expect(JSON.stringify(star.error?.issues)).toContain('cannot be combined with credentials');
    expect(CorsPolicy.safeParse({ ...base, origins: ['https://a.example'], headers: ['*'], credentials: true }).success).toBe(false);
    expect(CorsPolicy.safeParse({ ...base, origins: ['*', 'https://a.example'], credentials: false }).success).toBe(false);
    expect(CorsPolicy.safeParse({ ...base, origins: ['*'], credentials: false }).success).toBe(true);
  });

  it('refuses malformed origins, methods, headers and ages', () => {
    const ok = { origins: ['https://a.example:8443', 'http://[::1]:3000'], credentials: true };
    expect(CorsPolicy.safeParse(ok).success).toBe(true);
    for (const bad of [
      { origins: [] },
      { origins: ['https://a.example/'] },
      { origins: ['https://A.example'] },
      { origins: ['null'] },
      { origins: ['ftp://a.example'] },
      { origins: ['https://a.example\r\nx: y'] },
      { origins: ['https://a.example'], methods: ['get'] },
      { origins: ['https://a.example'], headers: ['bad header'] },
      { origins: ['https://a.example'], maxAgeSeconds: 86_401 },
      { origins: Array.from({ length: 201 }, (_, i) => `https://a${i}.example`) },
    ])
      expect(CorsPolicy.safeParse(bad).success, JSON.stringify(bad).slice(0, 80)).toBe(false);
  });

  it('refuses bad CIDRs and lists past the limit', () => {
    expect(IpRules.safeParse({ allow: ['10.0.0.0/8'], deny: ['2001:db8::/32'] }).success).toBe(true);
    expect(IpRules.safeParse({ deny: ['10.0.0.0/33'] }).success).toBe(false);
    expect(IpRules.safeParse({ deny: ['evil.example'] }).success).toBe(false);
    expect(IpRules.safeParse({ deny: Array.from({ length: MAX_IP_RULES + 1 }, () => '10.0.0.1') }).success).toBe(false);
  });

  it('accepts scopes of visible characters only', () => {
    expect(Scopes.safeParse(['orders:write', 'read', 'https://api.example/x']).success).toBe(true);
    for (const bad of [[''], ['a b'], ['a"b'], ['a\\b'], ['x'.repeat(129)], Array.from({ length: 65 }, (_, i) => `s${i}`)])
      expect(Scopes.safeParse(bad).success).toBe(false);
  });
});
