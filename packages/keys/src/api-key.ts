import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { BASE62, encodeBase62 } from './base62';
import { crc32 } from './crc32';

// tg_{env}_{random}{checksum}: 22 base62 characters of randomness (≥ 130 bits, drawn without
// modulo bias) and a 6-character base62 CRC32 of everything before it.
export const KEY_ENVS = ['live', 'test'] as const;
export type KeyEnv = (typeof KEY_ENVS)[number];

const RANDOM_LENGTH = 22;
const CHECKSUM_LENGTH = 6;
const MAX_KEY_LENGTH = 64;
const KEY_PATTERN = /^tg_(live|test)_([0-9A-Za-z]{22})([0-9A-Za-z]{6})$/;

export type ParsedKey = { key: string; env: KeyEnv; random: string; checksum: string };
export type KeyParseError = 'empty' | 'too_long' | 'malformed' | 'bad_checksum';

function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // 248 = 4 × 62: rejecting bytes above keeps every character equally likely.
      if (byte < 248) out += BASE62[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

const checksumOf = (body: string) => encodeBase62(crc32(body), CHECKSUM_LENGTH);

/** A new secret key. Show it once; store only `hashApiKey(key)` and `displayPrefix(key)`. */
export function generateApiKey(env: KeyEnv = 'live'): string {
  const body = `tg_${env}_${randomBase62(RANDOM_LENGTH)}`;
  return body + checksumOf(body);
}

/**
 * Checks shape and checksum without any lookup. Hostile input (huge, non-ASCII, wrong prefix)
 * is refused by length and pattern before any work proportional to it.
 */
export function parseApiKey(input: unknown): { ok: true; value: ParsedKey } | { ok: false; error: KeyParseError } {
  if (typeof input !== 'string' || input.length === 0) return { ok: false, error: 'empty' };
  if (input.length > MAX_KEY_LENGTH) return { ok: false, error: 'too_long' };
  const m = KEY_PATTERN.exec(input);
  if (!m) return { ok: false, error: 'malformed' };
  const [, env, random, checksum] = m as unknown as [string, KeyEnv, string, string];
  const expected = checksumOf(input.slice(0, input.length - CHECKSUM_LENGTH));
  if (!safeEqual(expected, checksum)) return { ok: false, error: 'bad_checksum' };
  return { ok: true, value: { key: input, env, random, checksum } };
}

/** SHA-256 hex: the only form a key is stored or looked up in. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** What people see of a key after creation, e.g. `tg_live_Ab3dE9fQ`. */
export function displayPrefix(key: string): string {
  const m = /^tg_(live|test)_/.exec(key);
  const head = m ? m[0].length : 0;
  return key.slice(0, head + 8);
}

/** Constant-time string comparison (length leaks, content doesn't). */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  if (ab.length !== bb.length) {
    timingSafeEqual(ab, ab);
    return false;
  }
  return timingSafeEqual(ab, bb);
}

/** An opaque random token with a readable prefix (admin tokens, reset links, invitations). */
export function generateToken(prefix: string, length = 32): string {
  return `${prefix}_${randomBase62(length)}`;
}
