import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RedisBreaker } from './breaker';

/** A stand-in connection: its status and whether PING answers are set by the test. */
function fakeRedis() {
  const c = Object.assign(new EventEmitter(), {
    status: 'ready',
    isCluster: false,
    pingAnswers: true,
    ping: () => (c.pingAnswers ? Promise.resolve('PONG') : new Promise<string>(() => undefined)),
  });
  return c;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('RedisBreaker', () => {
  it('opens after N consecutive failed round trips, not after fewer or interleaved ones', () => {
    const changes: string[] = [];
    const b = new RedisBreaker({
      redis: fakeRedis() as unknown as Redis,
      failures: 3,
      pingIntervalMs: 0,
      onChange: (s) => changes.push(s),
    });
    b.failure();
    b.failure();
    b.success(); // one slow reply among answered ones is not an outage
    b.failure();
    b.failure();
    expect(b.state).toBe('closed');
    expect(b.allow()).toBe(true);
    b.failure();
    expect(b.state).toBe('open');
    expect(b.allow()).toBe(false);
    expect(changes).toEqual(['open']);
    b.stop();
  });

  it('after the cooldown lets one probe through; its success closes it, its failure opens it again', () => {
    vi.useFakeTimers({ toFake: ['performance', 'setInterval', 'setTimeout'] });
    const b = new RedisBreaker({ redis: fakeRedis() as unknown as Redis, failures: 1, cooldownMs: 1000, pingIntervalMs: 0 });
    b.failure();
    expect(b.allow()).toBe(false);
    vi.advanceTimersByTime(1000);
    expect(b.allow()).toBe(true); // the probe
    expect(b.state).toBe('half_open');
    expect(b.allow()).toBe(false); // everyone else still falls back
    b.failure();
    expect(b.state).toBe('open');
    expect(b.allow()).toBe(false);
    vi.advanceTimersByTime(1000);
    expect(b.allow()).toBe(true);
    b.success();
    expect(b.state).toBe('closed');
    expect(b.allow()).toBe(true);
    expect(b.opened).toBe(2);
    b.stop();
  });

  it('opens on a lost connection and on a health ping left unanswered', async () => {
    vi.useFakeTimers({ toFake: ['performance', 'setInterval', 'setTimeout'] });
    const redis = fakeRedis();
    const b = new RedisBreaker({ redis: redis as unknown as Redis, pingIntervalMs: 100, pingTimeoutMs: 200, cooldownMs: 50 });
    redis.emit('close');
    expect(b.state).toBe('open');
    // Redis is back and answers PING: half-open once the cooldown is over, closed by a probe.
    await vi.advanceTimersByTimeAsync(150);
    expect(b.state).toBe('half_open');
    expect(b.allow()).toBe(true);
    b.success();
    expect(b.state).toBe('closed');
    // A PING that never comes back opens it, without any request having waited.
    redis.pingAnswers = false;
    await vi.advanceTimersByTimeAsync(100 + 200 + 1);
    expect(b.state).toBe('open');
    b.stop();
  });
});
