import { describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { createSessionToken, readSessionToken } from './session';
import { isSameOrigin } from '../shared/csrf';

const secret = 'x'.repeat(40);

describe('session tokens', () => {
  it('round-trips a user id and refuses tampering, other secrets, expiry and alg confusion', async () => {
    const token = await createSessionToken(secret, 'usr_1');
    expect(await readSessionToken(secret, token)).toMatchObject({ userId: 'usr_1' });
    expect(await readSessionToken('y'.repeat(40), token)).toBeNull();
    expect(await readSessionToken(secret, token.slice(0, -2) + 'AA')).toBeNull();
    expect(await readSessionToken(secret, await createSessionToken(secret, 'usr_1', Date.now() - 8 * 86_400_000))).toBeNull();
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"usr_1"}').toString('base64url')}.`;
    expect(await readSessionToken(secret, none)).toBeNull();
    const otherIssuer = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('usr_1')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(secret));
    expect(await readSessionToken(secret, otherIssuer)).toBeNull();
    expect(await readSessionToken(secret, 'x'.repeat(5000))).toBeNull();
    expect(await readSessionToken(secret, undefined)).toBeNull();
  });
});

describe('CSRF origin check', () => {
  const h = (o: Record<string, string>) => new Headers(o);
  it('accepts the console origin or the request host, refuses other and missing origins', () => {
    expect(isSameOrigin(h({ origin: 'http://localhost:3000', host: 'localhost:3000' }), 'http://localhost:3000')).toBe(true);
    expect(isSameOrigin(h({ origin: 'https://console.example.com' }), 'https://console.example.com')).toBe(true);
    expect(isSameOrigin(h({ origin: 'http://127.0.0.1:4000', host: '127.0.0.1:4000' }), 'http://localhost:3000')).toBe(true);
    expect(isSameOrigin(h({ referer: 'http://localhost:3000/t/x', host: 'localhost:3000' }), 'http://localhost:3000')).toBe(true);
    expect(isSameOrigin(h({ origin: 'https://evil.example', host: 'localhost:3000' }), 'http://localhost:3000')).toBe(false);
    expect(isSameOrigin(h({ origin: 'null', host: 'localhost:3000' }), 'http://localhost:3000')).toBe(false);
    expect(isSameOrigin(h({ host: 'localhost:3000' }), 'http://localhost:3000')).toBe(false);
  });
});
