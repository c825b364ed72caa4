import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchange, rawGet, startAttackBed, type AttackBed } from './fixtures';

// Identity and routing headers a client must not be able to set for the upstream, in any
// spelling: raw sockets keep the names exactly as written (case, underscores, duplicates).

let bed: AttackBed;

beforeAll(async () => {
  bed = await startAttackBed();
});

afterAll(async () => {
  await bed?.close();
});

async function forwarded(headers: Record<string, string>, target = '/p/get') {
  const n = bed.keyed.requests.length;
  const res = await exchange(bed.port, rawGet(target, bed.host, { authorization: `Bearer ${bed.key.key}`, ...headers }));
  expect(res.status).toBe(200);
  expect(bed.keyed.requests.length).toBe(n + 1);
  return { res, seen: bed.keyed.requests[n]! };
}

describe('header spoofing (raw sockets, recording upstream)', () => {
  it('underscore spellings of identity headers never reach the upstream (CGI maps them onto HTTP_X_TOLLGATE_*)', async () => {
    const { seen } = await forwarded({
      X_Tollgate_Consumer: 'admin',
      X_TOLLGATE_TENANT: 'ten_other',
      'x-tollgate_plan': 'enterprise',
      'X-Tollgate_Key_Id': 'key_forged',
      x_forwarded_for: '6.6.6.6',
      'X_Forwarded-Host': 'evil.example',
      X_Real_IP: '6.6.6.6',
      x_request_id: 'forged',
      'X-Custom_Header': 'kept',
    });
    const names = Object.keys(seen.headers);
    expect(names.filter((n) => n.includes('_') && n.replace(/_/g, '-').match(/^x-(tollgate-|forwarded-|real-ip|request-id)/))).toEqual([]);
    expect(seen.headers['x-tollgate-consumer']).toBe(bed.key.record.consumerId);
    expect(seen.headers['x-tollgate-tenant']).toBe(bed.tenantId);
    expect(seen.headers['x-tollgate-plan']).toBe('free');
    expect(seen.headers['x-tollgate-key-id']).toBe(bed.key.record.keyId);
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    // An ordinary header with an underscore is the client's business.
    expect(seen.headers['x-custom_header']).toBe('kept');
  });

  it('X-Original-URL and X-Rewrite-URL (and their underscore spellings) are not forwarded', async () => {
    const { seen } = await forwarded({
      'X-Original-URL': '/admin',
      'X-Rewrite-URL': '/admin',
      'X-Original-URI': '/admin',
      X_Original_URL: '/admin',
    });
    const names = Object.keys(seen.headers).map((n) => n.replace(/_/g, '-'));
    expect(names.filter((n) => /^x-(original-url|rewrite-url|original-uri)$/.test(n))).toEqual([]);
  });

  it("the upstream sees the gateway's X-Request-Id; the client's goes as X-Client-Request-Id only when well-formed", async () => {
    const a = await forwarded({ 'X-Request-Id': 'client-abc-123' });
    expect(a.seen.headers['x-request-id']).toBe(a.res.headers['x-request-id']);
    expect(a.seen.headers['x-request-id']).toBe(a.seen.headers['x-tollgate-request-id']);
    expect(a.seen.headers['x-request-id']).not.toBe('client-abc-123');
    expect(a.seen.headers['x-client-request-id']).toBe('client-abc-123');

    const b = await forwarded({ 'X-Request-Id': 'x'.repeat(500), 'X-Client-Request-Id': 'forged' });
    expect(b.seen.headers['x-request-id']).toBe(b.res.headers['x-request-id']);
    expect(b.seen.headers['x-client-request-id']).toBeUndefined();

    const c = await forwarded({ 'X-Request-Id': 'bad value "with" quotes' });
    expect(c.seen.headers['x-client-request-id']).toBeUndefined();
  });
});
