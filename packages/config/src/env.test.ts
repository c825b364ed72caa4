import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { booleanFromEnv, commonConfig, commonEnv, EnvError, parseEnv } from './env';

describe('parseEnv', () => {
  it('applies defaults', () => {
    const env = parseEnv(commonEnv, {});
    expect(env.REDIS_PREFIX).toBe('tg');
    expect(env.REDIS_URL).toBe('redis://127.0.0.1:6379');
  });
  it('names every bad variable in one clear error', () => {
    const shape = { ...commonEnv, PORT: z.coerce.number().int().min(1).max(65535), TLS: booleanFromEnv(false) };
    try {
      parseEnv(shape, { REDIS_URL: 'nope', PORT: '99999', TLS: 'maybe' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(EnvError);
      const msg = (err as Error).message;
      expect(msg).toContain('REDIS_URL');
      expect(msg).toContain('PORT');
      expect(msg).toContain('TLS');
    }
  });
});

describe('commonConfig', () => {
  it('gives every app the shared settings in camelCase', () => {
    expect(commonConfig(parseEnv(commonEnv, { REDIS_PREFIX: 'x1', LOG_LEVEL: 'warn' }))).toEqual({
      nodeEnv: 'development',
      logLevel: 'warn',
      redisUrl: 'redis://127.0.0.1:6379',
      redisPrefix: 'x1',
    });
  });
});
