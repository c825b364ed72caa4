import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey } from '@tollgate/keys';
import { exchange, rawGet, startAttackBed, type AttackBed } from './fixtures';

// Key guessing: one client presenting many unknown, well-formed keys. Each used to cost a Redis
// lookup; now the client's failed-authentication budget answers 429 without one once used up.

let bed: AttackBed;

beforeAll(async () => {
  bed = await startAttackBed();
});

afterAll(async () => {
  await bed?.close();
});

async function metric(name: string): Promise<number> {
  const text = await bed.gw.metrics.registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('failed-authentication budget', () => {
  it('answers 429 without a key lookup once a client has failed too often, and counts it', async () => {
    // A legitimate key of the same client, used before the attack, stays usable (it is cached).
    const legit = await exchange(bed.port, rawGet('/p/get', bed.host, { authorization: `Bearer ${bed.key.key}` }));
    expect(legit.status).toBe(200);
    const missesBefore = await metric('tollgate_gateway_key_cache_total{result="miss"}');

    const guesses = 80;
    const statuses: number[] = [];
    let retryAfter: string | undefined;
    for (let i = 0; i < guesses; i++) {
      const res = await exchange(bed.port, rawGet('/p/get', bed.host, { authorization: `Bearer ${generateApiKey('live')}` }));
      statuses.push(res.status);
      if (res.status === 429) retryAfter ??= res.headers['retry-after'];
    }
    const unauthorized = statuses.filter((s) => s === 401).length;
    const throttled = statuses.filter((s) => s === 429).length;
    expect(unauthorized + throttled).toBe(guesses);
    // The per-tenant budget (20 per 10 s) bounds the lookups, not the number of guesses.
    expect(unauthorized).toBeLessThanOrEqual(40);
    expect(throttled).toBeGreaterThanOrEqual(guesses - 40);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    const misses = (await metric('tollgate_gateway_key_cache_total{result="miss"}')) - missesBefore;
    expect(misses).toBe(unauthorized);
    expect(await metric('tollgate_gateway_auth_throttled_total')).toBe(throttled);
    expect(bed.keyed.requests.length).toBe(1);

    const again = await exchange(bed.port, rawGet('/p/get', bed.host, { authorization: `Bearer ${bed.key.key}` }));
    expect(again.status).toBe(200);
  }, 60_000);
});
