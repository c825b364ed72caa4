import { describe, expect, it } from 'vitest';
import { testKeyspace, testRedis } from '../harness/index';
import { createSessionToken, isSessionRevoked, readSessionToken, revokeSession } from '../../apps/console/src/server/console/session';

const secret = 'x'.repeat(40);

describe('logout', () => {
  it('revokes that session until it would have expired, and leaves other sessions alone', async () => {
    const redis = testRedis();
    const keyspace = testKeyspace('session');
    try {
      await new Promise<void>((r) => (redis.status === 'ready' ? r() : redis.once('ready', () => r())));
      const a = (await readSessionToken(secret, await createSessionToken(secret, 'usr_1')))!;
      const b = (await readSessionToken(secret, await createSessionToken(secret, 'usr_1')))!;
      expect(a.id).not.toBe(b.id);
      await revokeSession({ redis, keyspace }, a);
      expect(await isSessionRevoked({ redis, keyspace }, a)).toBe(true);
      expect(await isSessionRevoked({ redis, keyspace }, b)).toBe(false);
      const ttl = await redis.pttl(keyspace.revokedSession(a.id));
      expect(ttl).toBeGreaterThan(6 * 86_400_000);
      expect(ttl).toBeLessThanOrEqual(7 * 86_400_000);
    } finally {
      await redis.quit();
    }
  });
});
