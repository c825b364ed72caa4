import { describe, expect, it } from 'vitest';
import { fastUlid, isRequestId, requestIdFor } from './request-id';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const decodeTime = (id: string) => [...id.slice(0, 10)].reduce((t, c) => t * 32 + CROCKFORD.indexOf(c), 0);

describe('fastUlid', () => {
  it('produces valid ULIDs whose time part decodes to the given time', () => {
    const now = Date.UTC(2026, 10, 28, 12, 0, 0, 123);
    const id = fastUlid(now);
    expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(decodeTime(id)).toBe(now);
    expect(isRequestId(id)).toBe(true);
  });
  it('does not repeat across many ids in the same millisecond', () => {
    const ids = new Set(Array.from({ length: 20_000 }, () => fastUlid(1_700_000_000_000)));
    expect(ids.size).toBe(20_000);
  });
});

describe('requestIdFor', () => {
  const good = fastUlid();
  it("keeps a trusted sender's id in the one format", () => {
    expect(requestIdFor(good, true)).toBe(good);
  });
  it('never takes an id from an untrusted sender, however well-formed', () => {
    const id = requestIdFor(good, false);
    expect(id).not.toBe(good);
    expect(isRequestId(id)).toBe(true);
  });
  it('replaces hostile or foreign ids even from a trusted sender', () => {
    const hostile = [
      good + 'X', // overlong by one
      'A'.repeat(10_000),
      `${good.slice(0, 25)}\n`,
      `${good.slice(0, 12)}\r\nSet-Cookie: a=b`,
      `${good.slice(0, 25)}\u0000`,
      `${good.slice(0, 25)}\u007f`,
      good.toLowerCase(),
      '8' + good.slice(1), // past the ULID time range
      'ILOU' + good.slice(4), // letters Crockford base32 leaves out
      '550e8400-e29b-41d4-a716-446655440000', // another scheme (UUID)
      `req_${'ab'.repeat(10)}`,
      '',
      [good, good],
      undefined,
      null,
    ];
    for (const h of hostile) {
      const id = requestIdFor(h as string, true);
      expect(isRequestId(id), JSON.stringify(h)).toBe(true);
      expect(id).not.toBe(h);
    }
  });
});
