import { describe, expect, it } from 'vitest';
import { ERROR_STATUS } from '@tollgate/policy';
import { limitExceededBody, rateLimitHeaders, type DecideRequest, type Decision, type RateState } from './index';

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0); // 1768478400 s
const plan: RateState = {
  name: 'plan',
  algorithm: 'sliding_window',
  limit: 100,
  windowSeconds: 60,
  allowed: true,
  remaining: 42,
  resetSeconds: 13,
  retryAfterSeconds: 0,
};
const route: RateState = {
  name: 'route',
  algorithm: 'gcra',
  limit: 10,
  windowSeconds: 1,
  allowed: true,
  remaining: 9,
  resetSeconds: 1,
  retryAfterSeconds: 0,
};
const quota = {
  mode: 'hard_cap' as const,
  limit: 10_000,
  used: 1_000,
  remaining: 9_000,
  resetAt: NOW + 86_400_000,
  windowSeconds: 2_592_000,
};

function decision(over: Partial<Decision>): Decision {
  return {
    kind: 'decision',
    allowed: true,
    reason: null,
    limitName: null,
    rate: plan,
    rates: [plan],
    quota: null,
    overage: false,
    retryAfterSeconds: null,
    now: NOW,
    source: 'redis',
    ...over,
  };
}

describe('rateLimitHeaders', () => {
  it('formats one rate as the IETF draft fields plus X-RateLimit-*', () => {
    expect(rateLimitHeaders(decision({}))).toEqual({
      'RateLimit-Policy': '"plan";q=100;w=60',
      RateLimit: '"plan";r=42;t=13',
      'X-RateLimit-Limit': '100',
      'X-RateLimit-Remaining': '42',
      'X-RateLimit-Reset': '1768478413',
    });
  });

  it('writes counts as plain integers at any size, and anything that is not an integer as before', () => {
    const huge = { ...quota, limit: 2 ** 53 - 1, remaining: 0, resetAt: NOW + 1 };
    const h = rateLimitHeaders(decision({ rate: null, rates: [], quota: huge }));
    expect(h['X-RateLimit-Limit']).toBe('9007199254740991');
    expect(h['X-RateLimit-Remaining']).toBe('0');
    expect(h['RateLimit']).toBe('"quota";r=0;t=1');
    // Never expected from the limiter, but never rounded away either.
    const odd = rateLimitHeaders(decision({ rate: { ...plan, remaining: 2.5, limit: -0 } }));
    expect(odd['X-RateLimit-Remaining']).toBe('2.5');
    expect(odd['X-RateLimit-Limit']).toBe('0');
    // Either side of the table of small counts.
    for (const n of [0, 1, 4095, 4096, 65_536]) {
      const r = { ...plan, remaining: n, resetSeconds: n };
      const h = rateLimitHeaders(decision({ rate: r, rates: [r] }));
      expect([h['X-RateLimit-Remaining'], h['RateLimit']]).toEqual([String(n), `"plan";r=${n};t=${n}`]);
    }
    expect(rateLimitHeaders(decision({ rate: { ...plan, remaining: -1 } }))['X-RateLimit-Remaining']).toBe('-1');
  });

  it('lists every rate and the quota, and reports the most restrictive rate in X-RateLimit-*', () => {
    const h = rateLimitHeaders(decision({ rate: route, rates: [plan, route], quota }));
    expect(h['RateLimit-Policy']).toBe('"plan";q=100;w=60, "route";q=10;w=1, "quota";q=10000;w=2592000');
    expect(h['RateLimit']).toBe('"plan";r=42;t=13, "route";r=9;t=1, "quota";r=9000;t=86400');
    expect(h['X-RateLimit-Limit']).toBe('10');
    expect(h['X-RateLimit-Reset']).toBe('1768478401');
    expect(h['Retry-After']).toBeUndefined();
  });

  it('reuses the policy part for one decide request while the state part follows each decision', () => {
    const request: DecideRequest = {
      rates: [{ name: 'plan', key: 'k', limit: 100, windowSeconds: 60, algorithm: 'sliding_window' }],
      quota: { key: 'q', limit: 10_000, mode: 'hard_cap', periodStart: NOW - 1000, periodEnd: NOW + 2_591_999_000 },
    };
    const first = rateLimitHeaders(decision({ rates: [plan], quota, request }));
    const later = { ...plan, remaining: 7, resetSeconds: 3 };
    const second = rateLimitHeaders(decision({ rate: later, rates: [later], quota: { ...quota, remaining: 8_999 }, request }));
    expect(second['RateLimit-Policy']).toBe(first['RateLimit-Policy']);
    expect(first['RateLimit']).toBe('"plan";r=42;t=13, "quota";r=9000;t=86400');
    expect(second['RateLimit']).toBe('"plan";r=7;t=3, "quota";r=8999;t=86400');
    expect(second['X-RateLimit-Remaining']).toBe('7');
  });

  it('adds Retry-After on a refused rate', () => {
    const refused = { ...route, allowed: false, remaining: 0, retryAfterSeconds: 1 };
    const h = rateLimitHeaders(
      decision({ allowed: false, reason: 'rate', limitName: 'route', rate: refused, rates: [plan, refused], retryAfterSeconds: 1 }),
    );
    expect(h['Retry-After']).toBe('1');
    expect(h['RateLimit']).toBe('"plan";r=42;t=13, "route";r=0;t=1');
  });

  it('reports the quota in X-RateLimit-* when the quota refused, and with no rate at all', () => {
    const spent = { ...quota, used: 10_000, remaining: 0 };
    const h = rateLimitHeaders(decision({ allowed: false, reason: 'quota', limitName: 'quota', quota: spent, retryAfterSeconds: 86_400 }));
    expect(h).toMatchObject({
      'X-RateLimit-Limit': '10000',
      'X-RateLimit-Remaining': '0',
      'X-RateLimit-Reset': '1768564800',
      'Retry-After': '86400',
    });
    const onlyQuota = rateLimitHeaders(decision({ rate: null, rates: [], quota: { ...quota, windowSeconds: null } }));
    expect(onlyQuota['RateLimit-Policy']).toBe('"quota";q=10000');
    expect(onlyQuota['X-RateLimit-Limit']).toBe('10000');
  });

  it('escapes policy names as Structured Field strings', () => {
    const odd = { ...plan, name: 'a"b\\c' };
    expect(rateLimitHeaders(decision({ rate: odd, rates: [odd] }))['RateLimit']).toBe('"a\\"b\\\\c";r=42;t=13');
  });
});

describe('limitExceededBody', () => {
  it('names the rate limit and when to retry', () => {
    const refused = { ...plan, allowed: false, remaining: 0, retryAfterSeconds: 7 };
    const body = limitExceededBody(
      decision({ allowed: false, reason: 'rate', limitName: 'plan', rate: refused, rates: [refused], retryAfterSeconds: 7 }),
      'req_1',
    );
    expect(ERROR_STATUS[body.error.code]).toBe(429);
    expect(body.error).toMatchObject({
      code: 'rate_limited',
      requestId: 'req_1',
      limit: 'plan',
      retryAfterSeconds: 7,
      resetsAt: '2026-01-15T12:00:07.000Z',
    });
    expect(body.error.message).toContain('"plan" rate limit of 100 requests per 60 s');
  });

  it('says it is the quota and when it resets', () => {
    const body = limitExceededBody(
      decision({
        allowed: false,
        reason: 'quota',
        limitName: 'quota',
        quota: { ...quota, used: 10_000, remaining: 0 },
        retryAfterSeconds: 86_400,
      }),
    );
    expect(body.error).toMatchObject({
      code: 'quota_exceeded',
      limit: 'quota',
      quota: 10_000,
      used: 10_000,
      resetsAt: '2026-01-16T12:00:00.000Z',
      retryAfterSeconds: 86_400,
    });
    expect(body.error.message).toContain('resets at 2026-01-16T12:00:00.000Z');
  });
});
