import { describe, expect, it } from 'vitest';
import { classifyAddress, embeddedIpv4, ipv6Bytes, isAllowedTarget } from './addresses';

describe('ipv6Bytes', () => {
  it('expands compressed forms and trailing dotted quads', () => {
    expect([...ipv6Bytes('::1')!]).toEqual([...new Array(15).fill(0), 1]);
    expect([...ipv6Bytes('::ffff:1.2.3.4')!].slice(10)).toEqual([0xff, 0xff, 1, 2, 3, 4]);
    expect([...ipv6Bytes('2002:a9fe:a9fe::')!].slice(0, 6)).toEqual([0x20, 0x02, 169, 254, 169, 254]);
    expect(ipv6Bytes('1.2.3.4')).toBeNull();
  });
});

describe('metadata in every IPv6 embedding (SSRF)', () => {
  it.each([
    ['169.254.169.254', 'IPv4'],
    ['169.254.169.253', 'AWS DNS beside the metadata service'],
    ['169.254.170.2', 'ECS task metadata'],
    ['100.100.100.200', 'Alibaba'],
    ['fd00:ec2::254', 'AWS IPv6'],
    ['[fd00:ec2::254]', 'bracketed'],
    ['::ffff:169.254.169.254', 'IPv4-mapped'],
    ['::ffff:a9fe:a9fe', 'IPv4-mapped, hex'],
    ['::169.254.169.254', 'IPv4-compatible'],
    ['::a9fe:a9fe', 'IPv4-compatible, hex'],
    ['::ffff:0:a9fe:a9fe', 'SIIT'],
    ['64:ff9b::a9fe:a9fe', 'NAT64 well-known'],
    ['64:ff9b::169.254.169.254', 'NAT64 well-known, dotted'],
    ['64:ff9b:1:a9fe:a9:fe00::', 'NAT64 local-use /48'],
    ['64:ff9b:1:00a9:00fe:a9fe::', 'NAT64 local-use /56'],
    ['64:ff9b:1::a9:fea9:fe00:0', 'NAT64 local-use /64'],
    ['64:ff9b:1::a9fe:a9fe', 'NAT64 local-use /96'],
    ['2002:a9fe:a9fe::1', '6to4'],
    ['2001:0:a9fe:a9fe::1', 'Teredo server'],
    ['2001:0:4136:e378:8000:63bf:5601:5601', 'Teredo client (inverted)'],
  ])('%s (%s) is metadata, private targets allowed or not', (addr) => {
    expect(classifyAddress(addr)).toBe('metadata');
    expect(isAllowedTarget(addr, true)).toBe(false);
    expect(isAllowedTarget(addr, false)).toBe(false);
  });

  it('classifies private and public addresses, embedded or not', () => {
    expect(classifyAddress('127.0.0.1')).toBe('private');
    expect(classifyAddress('::1')).toBe('private');
    expect(classifyAddress('::ffff:10.0.0.1')).toBe('private');
    expect(classifyAddress('64:ff9b::7f00:1')).toBe('private');
    expect(classifyAddress('fe80::1%eth0')).toBe('private');
    expect(classifyAddress('8.8.8.8')).toBe('public');
    expect(classifyAddress('2606:4700:4700::1111')).toBe('public');
    expect(classifyAddress('not-an-ip')).toBe('private');
    expect(isAllowedTarget('127.0.0.1', true)).toBe(true);
    expect(isAllowedTarget('127.0.0.1', false)).toBe(false);
    expect(isAllowedTarget('8.8.8.8', false)).toBe(true);
    expect(embeddedIpv4('2606:4700:4700::1111')).toEqual([]);
  });
});
