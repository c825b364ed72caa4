import { describe, expect, it } from 'vitest';
import { CircuitBreaker, type CircuitState } from './circuit-breaker';

const policy = { failureRatio: 0.5, minRequests: 4, windowSeconds: 10, openSeconds: 5, halfOpenProbes: 2 };

describe('CircuitBreaker', () => {
  it('stays closed below the minimum number of calls, opens at the ratio', () => {
    const b = new CircuitBreaker(policy);
    b.record(true, 1000);
    b.record(true, 1000);
    b.record(true, 1000);
    expect(b.state).toBe('closed');
    b.record(false, 1000);
    expect(b.state).toBe('open');
    expect(b.refusing(1000)).toBe(true);
    expect(b.refusing(5999)).toBe(true);
  });

  it('forgets failures older than the window', () => {
    const b = new CircuitBreaker(policy);
    for (let i = 0; i < 3; i++) b.record(true, 1000);
    b.record(true, 12_000); // the three earlier ones are out of the 10 s window
    expect(b.state).toBe('closed');
    for (let i = 0; i < 3; i++) b.record(false, 12_500);
    expect(b.state).toBe('closed'); // 1 of 4 failed
  });

  it('half-opens after openSeconds with at most halfOpenProbes calls, closes after that many successes', () => {
    const changes: CircuitState[] = [];
    const b = new CircuitBreaker(policy, (s) => changes.push(s));
    for (let i = 0; i < 4; i++) b.record(true, 0);
    expect(b.refusing(5000)).toBe(false);
    b.picked(5000);
    b.picked(5000);
    expect(b.state).toBe('half_open');
    expect(b.refusing(5001)).toBe(true); // both probe slots taken
    b.record(false, 5002);
    expect(b.refusing(5002)).toBe(false);
    b.picked(5002);
    b.record(false, 5003);
    expect(b.state).toBe('closed');
    expect(changes).toEqual(['open', 'half_open', 'closed']);
  });

  it('reopens when a probe fails, and frees probe slots nobody reported back on', () => {
    const b = new CircuitBreaker({ ...policy, halfOpenProbes: 1 });
    for (let i = 0; i < 4; i++) b.record(true, 0);
    b.picked(5000);
    b.record(true, 5001);
    expect(b.state).toBe('open');
    expect(b.refusing(9000)).toBe(true);
    b.picked(10_001); // half-open again; this probe never reports
    expect(b.refusing(10_002)).toBe(true);
    expect(b.refusing(15_001)).toBe(false);
  });
});
