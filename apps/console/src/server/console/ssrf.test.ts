import { describe, expect, it } from 'vitest';
import { checkUpstreamUrl, classifyAddress } from './ssrf';

const resolveTo =
  (...addrs: string[]) =>
  async () =>
    addrs;

describe('upstream URL checks (SSRF)', () => {
  it.each([
    'http://169.254.169.254/latest/meta-data/',
    'http://[::1]/',
    'http://10.0.0.1',
    'http://127.0.0.1:8080',
    'http://192.168.1.10',
    'http://172.16.5.4',
    'http://100.64.0.1',
    'http://0.0.0.0',
    'http://[fe80::1]/',
    'http://[fc00::5]/',
    'http://[::ffff:127.0.0.1]/',
    'http://[::ffff:a9fe:a9fe]/',
    'http://2130706433/',
    'http://0x7f.0.0.1/',
    'http://017700000001/',
  ])('refuses %s when private targets are not allowed', async (url) => {
    const res = await checkUpstreamUrl(url, { allowPrivate: false, resolve: resolveTo('93.184.216.34') });
    expect(res.ok).toBe(false);
  });

  it('refuses a public-looking host name that resolves to a private address', async () => {
    const res = await checkUpstreamUrl('https://internal.attacker.example', {
      allowPrivate: false,
      resolve: resolveTo('93.184.216.34', '10.1.2.3'),
    });
    expect(res).toEqual({ ok: false, reason: expect.stringContaining('10.1.2.3') });
  });

  it('refuses localhost names without resolving them', async () => {
    const res = await checkUpstreamUrl('http://api.localhost:3000', { allowPrivate: false, resolve: resolveTo('93.184.216.34') });
    expect(res.ok).toBe(false);
  });

  it('allows private and loopback targets when the tenant allows them', async () => {
    expect(await checkUpstreamUrl('http://127.0.0.1:4010', { allowPrivate: true })).toEqual({ ok: true, url: 'http://127.0.0.1:4010' });
    expect((await checkUpstreamUrl('http://10.0.0.1/api', { allowPrivate: true })).ok).toBe(true);
  });

  it('refuses cloud metadata endpoints even when private targets are allowed', async () => {
    for (const url of ['http://169.254.169.254/', 'http://[fd00:ec2::254]/', 'http://metadata.google.internal/']) {
      expect((await checkUpstreamUrl(url, { allowPrivate: true })).ok).toBe(false);
    }
  });

  it('refuses non-http schemes, credentials, query strings and garbage', async () => {
    for (const url of [
      'file:///etc/passwd',
      'gopher://x.example',
      'ftp://x.example',
      'http://u:p@x.example',
      'http://x.example/?a=1',
      'not a url',
      'javascript:alert(1)',
    ]) {
      expect((await checkUpstreamUrl(url, { allowPrivate: true, resolve: resolveTo('93.184.216.34') })).ok).toBe(false);
    }
  });

  it('refuses a host that does not resolve', async () => {
    const res = await checkUpstreamUrl('https://nope.invalid', {
      allowPrivate: false,
      resolve: async () => {
        throw new Error('ENOTFOUND');
      },
    });
    expect(res.ok).toBe(false);
  });

  it('accepts a public host and normalises a trailing slash away', async () => {
    expect(
      await checkUpstreamUrl('https://api.example.com/v2/', {
        allowPrivate: false,
        resolve: resolveTo('93.184.216.34', '2606:2800:220:1::1'),
      }),
    ).toEqual({
      ok: true,
      url: 'https://api.example.com/v2',
    });
  });

  it('classifies addresses', () => {
    expect(classifyAddress('8.8.8.8')).toBe('public');
    expect(classifyAddress('2001:4860:4860::8888')).toBe('public');
    expect(classifyAddress('::ffff:8.8.8.8')).toBe('public');
    expect(classifyAddress('::1')).toBe('private');
    expect(classifyAddress('169.254.169.254')).toBe('metadata');
    expect(classifyAddress('not-an-ip')).toBe('private');
  });
});

describe('metadata behind IPv6 embeddings (issue 18)', () => {
  it.each([
    'http://[64:ff9b::a9fe:a9fe]/',
    'http://[::169.254.169.254]/',
    'http://[::ffff:a9fe:a9fe]/',
    'http://[2002:a9fe:a9fe::]/',
    'http://[64:ff9b:1::a9fe:a9fe]/',
  ])('refuses %s even with private targets allowed', async (url) => {
    const res = await checkUpstreamUrl(url, { allowPrivate: true });
    expect(res.ok).toBe(false);
  });
});
