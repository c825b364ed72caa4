import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchange, rawGet, startAttackBed, type AttackBed } from './fixtures';

// Malformed Host headers and oversized request targets, over raw sockets.

let bed: AttackBed;

beforeAll(async () => {
  bed = await startAttackBed({ GATEWAY_MAX_HEADER_BYTES: '65536' });
});

afterAll(async () => {
  await bed?.close();
});

function upstreamCount() {
  return bed.open.requests.length + bed.keyed.requests.length;
}

describe('Host header and request-target attacks', () => {
  it('answers 400 (not 404) to a Host with userinfo or other non-host syntax', async () => {
    for (const host of ['a@b', `user@${bed.host}`, `${bed.host}@evil.example`, `${bed.host}/x`, `${bed.host}:80x`, '[::1']) {
      const before = upstreamCount();
      const res = await exchange(bed.port, rawGet('/open/get', host));
      expect(res.status, host).toBe(400);
      expect(JSON.parse(res.body).error.code, host).toBe('bad_request');
      expect(upstreamCount(), host).toBe(before);
    }
  });

  it('still serves a well-formed Host with a port', async () => {
    const res = await exchange(bed.port, rawGet('/open/get', `${bed.host}:${bed.port}`));
    expect(res.status).toBe(200);
  });

  it('answers 414 to request targets over 8 KiB (10-15 KB targets were proxied)', async () => {
    for (const size of [8 * 1024 + 1, 10_000, 15_000]) {
      const before = upstreamCount();
      const target = `/open/get?pad=${'a'.repeat(size - '/open/get?pad='.length)}`;
      expect(target.length).toBe(size);
      const res = await exchange(bed.port, rawGet(target, bed.host));
      expect(res.status, `${size}`).toBe(414);
      expect(JSON.parse(res.body).error.code).toBe('uri_too_long');
      expect(upstreamCount()).toBe(before);
    }
    const ok = `/open/get?pad=${'a'.repeat(8 * 1024 - '/open/get?pad='.length)}`;
    expect((await exchange(bed.port, rawGet(ok, bed.host))).status).toBe(200);
  });
});
