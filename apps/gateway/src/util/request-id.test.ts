import { decodeTime } from 'ulid';
import { describe, expect, it } from 'vitest';
import { fastUlid } from './request-id';

describe('fastUlid', () => {
  it('produces valid ULIDs whose time part decodes to the given time', () => {
    const now = Date.UTC(2026, 10, 28, 12, 0, 0, 123);
    const id = fastUlid(now);
    expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(decodeTime(id)).toBe(now);
  });
  it('does not repeat across many ids in the same millisecond', () => {
    const ids = new Set(Array.from({ length: 20_000 }, () => fastUlid(1_700_000_000_000)));
    expect(ids.size).toBe(20_000);
  });
});
