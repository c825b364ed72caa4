import { describe, expect, it } from 'vitest';
import { cidrList, clientAddress, createTrustedProxyCheck, forwardedEntryAddress, MAX_FORWARDED_HOPS } from './trusted-proxies';

const trusted = createTrustedProxyCheck(['10.0.0.0/8', '::1/128']);

describe('clientAddress', () => {
  it('is the socket peer when the peer is not a trusted proxy, whatever X-Forwarded-For says', () => {
    expect(clientAddress('8.8.8.8', '1.1.1.1', trusted)).toBe('8.8.8.8');
    expect(clientAddress('::ffff:8.8.8.8', '10.0.0.1', trusted)).toBe('8.8.8.8');
    expect(clientAddress('8.8.8.8', undefined, trusted)).toBe('8.8.8.8');
  });

  it('behind trusted proxies, is the right-most entry that is not one', () => {
    expect(clientAddress('10.0.0.1', '6.6.6.6, 1.1.1.1, 10.0.0.2', trusted)).toBe('1.1.1.1');
    expect(clientAddress('::1', ['6.6.6.6', '2001:db8::5'], trusted)).toBe('2001:db8::5');
    expect(clientAddress('10.0.0.1', '6.6.6.6,,, 1.1.1.1 ,', trusted)).toBe('1.1.1.1');
  });

  it.each([
    ['a port on IPv4', '1.1.1.1:8080', '1.1.1.1'],
    ['a bracketed IPv6 with a port', '[2001:db8::1]:443', '2001:db8::1'],
    ['a bracketed IPv6', '[2001:db8::1]', '2001:db8::1'],
    ['IPv4-mapped IPv6', '::ffff:1.2.3.4', '1.2.3.4'],
    ['garbage: the trusted hop that passed it on', 'garbage', '10.0.0.1'],
    ['a host name: the trusted hop', 'evil.example', '10.0.0.1'],
    ['a bad port', '1.1.1.1:http', '10.0.0.1'],
    ['an unclosed bracket', '[2001:db8::1', '10.0.0.1'],
    ['only separators', ' , , ', '10.0.0.1'],
    ['a huge entry', '1'.repeat(10_000), '10.0.0.1'],
  ])('%s', (_name, xff, expected) => {
    expect(clientAddress('10.0.0.1', xff, trusted)).toBe(expected);
  });

  it('reads at most MAX_FORWARDED_HOPS entries of a 1,000-entry header', () => {
    const spoofed = Array.from({ length: 1000 }, (_, i) => `6.6.${i >> 8}.${i & 255}`);
    expect(clientAddress('10.0.0.1', [...spoofed, '1.1.1.1'].join(','), trusted)).toBe('1.1.1.1');
    const allProxies = Array.from({ length: 1000 }, (_, i) => `10.0.${i >> 8}.${i & 255}`).join(',');
    // The walk stops after MAX_FORWARDED_HOPS trusted hops, at the last one it examined.
    const out = clientAddress('10.0.0.1', `6.6.6.6,${allProxies}`, trusted);
    expect(out.startsWith('10.0.')).toBe(true);
    expect(out).toBe(`10.0.${(1000 - MAX_FORWARDED_HOPS) >> 8}.${(1000 - MAX_FORWARDED_HOPS) & 255}`);
  });

  it('never trusts anything with an empty proxy list', () => {
    const none = createTrustedProxyCheck([]);
    expect(clientAddress('10.0.0.1', '1.1.1.1', none)).toBe('10.0.0.1');
  });
});

describe('forwardedEntryAddress', () => {
  it('accepts addresses and drops ports, refuses everything else', () => {
    expect(forwardedEntryAddress(' 1.2.3.4 ')).toBe('1.2.3.4');
    expect(forwardedEntryAddress('1.2.3.4:99999')).toBe('1.2.3.4');
    expect(forwardedEntryAddress('2001:db8::1')).toBe('2001:db8::1');
    expect(forwardedEntryAddress('[::1]:1')).toBe('::1');
    for (const bad of ['', 'unknown', '1.2.3', '256.1.1.1', '[::1]x', '1.2.3.4:', '::1]', '_hidden'])
      expect(forwardedEntryAddress(bad), bad).toBeNull();
  });
});

describe('cidrList', () => {
  it('parses addresses and blocks, and names a bad item', () => {
    expect(cidrList.parse(' 10.0.0.0/8, ::1 ,127.0.0.1')).toEqual(['10.0.0.0/8', '::1/128', '127.0.0.1/32']);
    expect(cidrList.safeParse('10.0.0.0/33').success).toBe(false);
    expect(cidrList.safeParse('proxy.internal').success).toBe(false);
  });
});
