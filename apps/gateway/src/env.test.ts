import { describe, expect, it } from 'vitest';
import { createTrustedProxyCheck, loadGatewayConfig } from './env';

describe('loadGatewayConfig', () => {
  it('applies the documented defaults', () => {
    const c = loadGatewayConfig({});
    expect(c.port).toBe(8080);
    expect(c.adminPort).toBe(9091);
    expect(c.baseDomain).toBe('localhost');
    expect(c.workers).toBeGreaterThanOrEqual(1);
    expect(c.spoolDir).toBe('.data/spool');
    expect(c.tls).toBeNull();
    expect(c.usageBatch).toEqual({ maxEvents: 500, maxWaitMs: 250 });
  });

  it('refuses usage batch settings that are zero, negative, fractional or absurd', () => {
    for (const bad of ['0', '-5', '1.5', 'lots', '10001'])
      expect(() => loadGatewayConfig({ GATEWAY_USAGE_BATCH_EVENTS: bad })).toThrow(/GATEWAY_USAGE_BATCH_EVENTS/);
    expect(() => loadGatewayConfig({ GATEWAY_USAGE_BATCH_WAIT_MS: '0' })).toThrow(/GATEWAY_USAGE_BATCH_WAIT_MS/);
    expect(loadGatewayConfig({ GATEWAY_USAGE_BATCH_EVENTS: '100', GATEWAY_USAGE_BATCH_WAIT_MS: '50' }).usageBatch).toEqual({
      maxEvents: 100,
      maxWaitMs: 50,
    });
  });

  it('limit reservations are on unless switched off, and a value that is not a boolean is refused', () => {
    expect(loadGatewayConfig({}).limitReservations).toBe(true);
    expect(loadGatewayConfig({ GATEWAY_LIMIT_RESERVATIONS: 'false' }).limitReservations).toBe(false);
    for (const bad of ['maybe', '2', 'on please'])
      expect(() => loadGatewayConfig({ GATEWAY_LIMIT_RESERVATIONS: bad })).toThrow(/GATEWAY_LIMIT_RESERVATIONS/);
  });

  it('single-threaded GC is on unless switched off, and a value that is not a boolean is refused', () => {
    expect(loadGatewayConfig({}).singleThreadedGc).toBe(true);
    expect(loadGatewayConfig({ GATEWAY_SINGLE_THREADED_GC: 'false' }).singleThreadedGc).toBe(false);
    for (const bad of ['yes please', '-1', '--single-threaded-gc'])
      expect(() => loadGatewayConfig({ GATEWAY_SINGLE_THREADED_GC: bad })).toThrow(/GATEWAY_SINGLE_THREADED_GC/);
  });

  it('names every bad variable at once', () => {
    expect(() => loadGatewayConfig({ GATEWAY_PORT: 'x', GATEWAY_TRUSTED_PROXIES: '10.0.0.0/99', GATEWAY_REDIS_TIMEOUT_MS: '-1' })).toThrow(
      /GATEWAY_PORT[\s\S]*GATEWAY_TRUSTED_PROXIES[\s\S]*GATEWAY_REDIS_TIMEOUT_MS|GATEWAY_PORT[\s\S]*GATEWAY_REDIS_TIMEOUT_MS[\s\S]*GATEWAY_TRUSTED_PROXIES/,
    );
    expect(() => loadGatewayConfig({ GATEWAY_TLS_CERT: '/x.pem' })).toThrow(/set together/);
  });
});

describe('createTrustedProxyCheck', () => {
  it('matches IPv4, IPv4-mapped and IPv6 CIDRs and nothing when empty', () => {
    const check = createTrustedProxyCheck(loadGatewayConfig({ GATEWAY_TRUSTED_PROXIES: '10.0.0.0/8, ::1, fd00::/8' }).trustedProxies);
    expect(check('10.1.2.3')).toBe(true);
    expect(check('::ffff:10.1.2.3')).toBe(true);
    expect(check('11.0.0.1')).toBe(false);
    expect(check('::1')).toBe(true);
    expect(check('fd12::1')).toBe(true);
    expect(check('not an ip')).toBe(false);
    expect(createTrustedProxyCheck([])('10.0.0.1')).toBe(false);
  });
});
