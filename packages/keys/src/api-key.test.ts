import { describe, expect, it } from 'vitest';
import { crc32 } from './crc32';
import { displayPrefix, generateApiKey, generateToken, hashApiKey, parseApiKey, safeEqual } from './api-key';

describe('generateApiKey', () => {
  it('makes keys of the documented format that parse back', () => {
    const key = generateApiKey('live');
    expect(key).toMatch(/^tg_live_[0-9A-Za-z]{28}$/);
    const parsed = parseApiKey(key);
    expect(parsed).toEqual({ ok: true, value: expect.objectContaining({ env: 'live', key }) });
    expect(parseApiKey(generateApiKey('test')).ok).toBe(true);
  });

  it('never repeats across many keys and uses the whole alphabet', () => {
    const keys = new Set(Array.from({ length: 5000 }, () => generateApiKey()));
    expect(keys.size).toBe(5000);
    const chars = new Set([...keys].join('').replace(/tg_live_/g, ''));
    expect(chars.size).toBe(62);
  });
});

describe('parseApiKey', () => {
  it('rejects a key with one mistyped character by its checksum, without a lookup', () => {
    const key = generateApiKey();
    const i = 12;
    const typo = key.slice(0, i) + (key[i] === 'a' ? 'b' : 'a') + key.slice(i + 1);
    expect(parseApiKey(typo)).toEqual({ ok: false, error: 'bad_checksum' });
  });

  it('rejects swapped adjacent characters', () => {
    let key = generateApiKey();
    while (key[10] === key[11]) key = generateApiKey();
    const swapped = key.slice(0, 10) + key[11] + key[10] + key.slice(12);
    expect(parseApiKey(swapped).ok).toBe(false);
  });

  it.each([
    ['empty string', '', 'empty'],
    ['non-string', 12345, 'empty'],
    ['null', null, 'empty'],
    ['huge input', 'tg_live_' + 'a'.repeat(1_000_000), 'too_long'],
    ['wrong prefix', 'sk_live_' + 'a'.repeat(28), 'malformed'],
    ['unknown env', 'tg_prod_' + 'a'.repeat(28), 'malformed'],
    ['too short', 'tg_live_abc', 'malformed'],
    ['non-ASCII', 'tg_live_' + 'é'.repeat(28), 'malformed'],
    ['whitespace', ' tg_live_' + 'a'.repeat(27), 'malformed'],
    ['trailing newline', 'tg_live_' + 'a'.repeat(28) + '\n', 'malformed'],
    ['NUL byte', 'tg_live_' + 'a'.repeat(27) + '\0', 'malformed'],
  ])('rejects %s', (_name, input, error) => {
    expect(parseApiKey(input)).toEqual({ ok: false, error });
  });
});

describe('hashing and comparison', () => {
  it('hashes to stable lowercase SHA-256 hex', () => {
    expect(hashApiKey('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    const key = generateApiKey();
    expect(hashApiKey(key)).toBe(hashApiKey(key));
    expect(hashApiKey(key)).not.toContain(key);
  });

  it('computes the standard CRC-32', () => {
    expect(crc32('123456789')).toBe(0xcbf43926);
  });

  it('compares in constant time and handles different lengths', () => {
    expect(safeEqual('abc', 'abc')).toBe(true);
    expect(safeEqual('abc', 'abd')).toBe(false);
    expect(safeEqual('abc', 'abcd')).toBe(false);
  });

  it('shows only a short prefix', () => {
    const key = generateApiKey('test');
    expect(displayPrefix(key)).toBe(key.slice(0, 16));
    expect(displayPrefix(key).length).toBeLessThan(key.length / 2);
  });

  it('makes prefixed opaque tokens', () => {
    expect(generateToken('tga')).toMatch(/^tga_[0-9A-Za-z]{32}$/);
  });
});
