import { describe, expect, it } from 'vitest';
import { hashPassword, verifyPassword } from './index';

describe('hashPassword / verifyPassword', () => {
  it('produces scrypt$N$r$p$salt$hash that verifies the right password only', async () => {
    const h = await hashPassword('tollgate-demo');
    expect(h).toMatch(/^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(await verifyPassword('tollgate-demo', h)).toBe(true);
    expect(await verifyPassword('tollgate-demO', h)).toBe(false);
    expect(await hashPassword('tollgate-demo')).not.toBe(h); // salted
  });

  it('treats composed and decomposed Unicode forms of a password alike', async () => {
    const h = await hashPassword('caf\u00e9');
    expect(await verifyPassword('cafe\u0301', h)).toBe(true);
  });

  it('returns false, never throws, for hostile passwords and hashes', async () => {
    const h = await hashPassword('pw');
    for (const pw of ['', 'x'.repeat(10_000), null, 42, {}]) expect(await verifyPassword(pw, h)).toBe(false);
    for (const stored of [
      '',
      'plain',
      null,
      'scrypt$16384$8$1$$',
      'bcrypt$2b$10$abc',
      h.replace('$16384$', '$16383$'), // N not a power of two
      h.replace('$16384$', '$67108864$'), // work far beyond bounds
      h.replace('$8$1$', '$8$99$'),
      `${h}$extra`,
      'scrypt$16384$8$1$' + 'A'.repeat(600),
    ]) {
      expect(await verifyPassword('pw', stored)).toBe(false);
    }
    await expect(hashPassword('')).rejects.toThrow();
    await expect(hashPassword('x'.repeat(2000))).rejects.toThrow();
  });
});
