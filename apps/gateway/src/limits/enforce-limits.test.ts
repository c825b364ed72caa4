import { describe, expect, it } from 'vitest';
import { createKeyspace, type KeyRecord, type PlanPolicy } from '@tollgate/policy';
import { buildDecision, createMemoryLimiter, type DecideRequest, type Limiter, type LimitOutcome } from '@tollgate/ratelimit';
import type { CompiledApi, CompiledRoute } from '../routing/route-table';
import { createLimitEnforcer, type FallbackReason } from './enforce-limits';

const keyspace = createKeyspace('tgunit');
const apiOf = (failMode: 'open' | 'closed') => ({ id: 'api_1', policy: { failMode } }) as unknown as CompiledApi;
const route = { id: 'rt_1', policy: { rateLimit: null } } as unknown as CompiledRoute;
const DAY = 86_400_000;

function record(over: Partial<KeyRecord> = {}): KeyRecord {
  return {
    schemaVersion: 1,
    keyId: 'key_1',
    tenantId: 'ten_1',
    consumerId: 'con_1',
    subscriptionId: 'sub_1',
    planId: 'pln_1',
    status: 'active',
    subscriptionStatus: 'active',
    expiresAt: null,
    apiIds: [],
    scopes: [],
    rateLimitOverride: null,
    quotaOverride: null,
    periodStart: Date.now() - DAY,
    periodEnd: Date.now() + 29 * DAY,
    ...over,
  };
}
const plan = (over: Partial<PlanPolicy> = {}): PlanPolicy => ({
  id: 'pln_1',
  slug: 'p',
  name: 'P',
  rateLimit: null,
  quota: null,
  apiIds: ['api_1'],
  ...over,
});

/** A limiter whose answer the test sets; counts what reached it. */
function scripted() {
  let answer: (req: DecideRequest) => LimitOutcome = () => ({ kind: 'unavailable', reason: 'breaker_open', message: 'open' });
  const l = {
    calls: 0,
    set(fn: (req: DecideRequest) => LimitOutcome) {
      answer = fn;
    },
    decide(req: DecideRequest) {
      l.calls++;
      return Promise.resolve(answer(req));
    },
  };
  return l as typeof l & Limiter;
}

function enforcer(limiter: Limiter, live = 1, denyCacheMaxMs = 10_000) {
  const fallbacks: [FallbackReason, string, string][] = [];
  const e = createLimitEnforcer({
    keyspace,
    redis: limiter,
    memory: createMemoryLimiter(),
    liveProcesses: () => live,
    denyCacheMaxMs,
    onFallback: (reason, mode, result) => fallbacks.push([reason, mode, result]),
  });
  return { e, fallbacks };
}

async function run(
  e: ReturnType<typeof enforcer>['e'],
  subject: { record: KeyRecord; plan: PlanPolicy },
  n: number,
  failMode: 'open' | 'closed' = 'open',
) {
  const kinds: string[] = [];
  for (let i = 0; i < n; i++) {
    const v = await e.enforce(apiOf(failMode), route, { kind: 'key', ...subject }, `req${i}`, Date.now());
    kinds.push(v.kind === 'reject' ? `429:${v.reason}` : v.kind);
  }
  return kinds;
}

describe('fallback while Redis is unavailable', () => {
  it('divides each rate limit by the live gateway processes, and counts every decision', async () => {
    const limiter = scripted();
    const { e, fallbacks } = enforcer(limiter, 4);
    const subject = { record: record(), plan: plan({ rateLimit: { limit: 100, windowSeconds: 60, algorithm: 'sliding_window' } }) };
    const kinds = await run(e, subject, 40);
    expect(kinds.filter((k) => k === 'allow')).toHaveLength(25);
    expect(kinds.filter((k) => k === '429:rate')).toHaveLength(15);
    expect(fallbacks).toHaveLength(40);
    expect(fallbacks[0]).toEqual(['breaker_open', 'open', 'allowed']);
    expect(fallbacks[39]).toEqual(['breaker_open', 'open', 'rate']);
  });

  it('checks a quota-only plan against the last counter seen, each process using its share of what was left', async () => {
    const limiter = scripted();
    const { e } = enforcer(limiter, 2);
    const subject = { record: record(), plan: plan({ quota: { limit: 100, mode: 'hard_cap' } }) };
    // Redis answers once: 90 of 100 used.
    limiter.set((req) => buildDecision(req, [Date.now(), 1, 0, 90, 1, 0], 1, Date.now(), 'redis'));
    expect(await run(e, subject, 1)).toEqual(['allow']);
    limiter.set(() => ({ kind: 'unavailable', reason: 'timeout', message: 'slow' }));
    // (100 - 90) / 2 processes = 5 for this one, then refused as Redis would at the cap.
    expect(await run(e, subject, 7)).toEqual(['allow', 'allow', 'allow', 'allow', 'allow', '429:quota', '429:quota']);
  });

  it('fails closed with 503 when the API says so', async () => {
    const { e, fallbacks } = enforcer(scripted(), 1);
    const subject = { record: record(), plan: plan({ quota: { limit: 100, mode: 'hard_cap' } }) };
    expect(await run(e, subject, 2, 'closed')).toEqual(['unavailable', 'unavailable']);
    expect(fallbacks).toEqual([
      ['breaker_open', 'closed', 'unavailable'],
      ['breaker_open', 'closed', 'unavailable'],
    ]);
  });
});

describe('the deny cache', () => {
  const refuse = (retryMs: number) => (req: DecideRequest) =>
    buildDecision(req, [Date.now(), 0, 1, 0, 0, retryMs, retryMs], 1, Date.now(), 'redis');
  const limited = () => ({ record: record(), plan: plan({ rateLimit: { limit: 5, windowSeconds: 60, algorithm: 'fixed_window' } }) });

  it('refuses a key Redis refused until the reset Redis named, without asking again', async () => {
    const limiter = scripted();
    limiter.set(refuse(30_000));
    const { e } = enforcer(limiter);
    const kinds = await run(e, limited(), 50);
    expect(kinds.every((k) => k === '429:rate')).toBe(true);
    expect(limiter.calls).toBe(1);
    const v = await e.enforce(apiOf('open'), route, { kind: 'key', ...limited() }, 'x', Date.now());
    expect(v.kind).toBe('reject');
  });

  it('asks again once the reset has passed (or with the cache off)', async () => {
    const limiter = scripted();
    limiter.set(refuse(2));
    const { e } = enforcer(limiter);
    const subject = limited();
    await run(e, subject, 1);
    await new Promise((r) => setTimeout(r, 5));
    await run(e, subject, 1);
    expect(limiter.calls).toBe(2);
    const off = scripted();
    off.set(refuse(30_000));
    await run(enforcer(off, 1, 0).e, subject, 3);
    expect(off.calls).toBe(3);
  });
});
