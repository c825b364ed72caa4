import { describe, expect, it } from 'vitest';
import { addAnchoredMonths, billingPeriodAt, hourStart } from './period';
import { divRoundHalfUp, previewInvoice, pricingFromPlan, rateTiers, rateUsage, PricingError, type PlanPricing } from './rating';

const plan = (p: Partial<Parameters<typeof pricingFromPlan>[0]> = {}): PlanPricing =>
  pricingFromPlan({
    currency: 'usd',
    flatFeeMinor: 0,
    includedRequests: 0,
    overageUnitPriceMinor: 0,
    overageBlockSize: 1,
    tiers: null,
    monthlyQuota: null,
    quotaMode: 'OVERAGE',
    ...p,
  });

const d = (s: string) => new Date(s);

describe('rateUsage', () => {
  const cases: Array<[string, PlanPricing, bigint, bigint]> = [
    ['free plan costs nothing', plan(), 1_000n, 0n],
    ['included requests are free', plan({ includedRequests: 1000, overageUnitPriceMinor: 2 }), 1_000n, 0n],
    ['overage per unit after the included ones', plan({ includedRequests: 1000, overageUnitPriceMinor: 2 }), 1_001n, 2n],
    [
      'overage per block rounds a started block up',
      plan({ includedRequests: 100, overageUnitPriceMinor: 50, overageBlockSize: 1000 }),
      101n,
      50n,
    ],
    [
      'overage per block: exactly one block',
      plan({ includedRequests: 100, overageUnitPriceMinor: 50, overageBlockSize: 1000 }),
      1_100n,
      50n,
    ],
    [
      'overage per block: one request into the second block',
      plan({ includedRequests: 100, overageUnitPriceMinor: 50, overageBlockSize: 1000 }),
      1_101n,
      100n,
    ],
    ['no usage, no overage', plan({ includedRequests: 0, overageUnitPriceMinor: 50, overageBlockSize: 1000 }), 0n, 0n],
    [
      'hard cap bills nothing past the quota',
      plan({ includedRequests: 10, overageUnitPriceMinor: 3, monthlyQuota: 20, quotaMode: 'HARD_CAP' }),
      500n,
      30n,
    ],
    [
      'overage mode bills past the quota',
      plan({ includedRequests: 10, overageUnitPriceMinor: 3, monthlyQuota: 20, quotaMode: 'OVERAGE' }),
      500n,
      1470n,
    ],
    [
      'graduated tiers price each tier at its own rate plus its flat fee',
      plan({
        tiers: [
          { upTo: 100, unitPriceMinor: 0, flatMinor: 0 },
          { upTo: 1000, unitPriceMinor: 2, flatMinor: 500 },
          { upTo: null, unitPriceMinor: 1, flatMinor: 0 },
        ],
      }),
      1_500n,
      900n * 2n + 500n + 500n,
    ],
    [
      'graduated tiers apply after the included requests',
      plan({
        includedRequests: 50,
        tiers: [
          { upTo: 10, unitPriceMinor: 5, flatMinor: 0 },
          { upTo: null, unitPriceMinor: 1, flatMinor: 0 },
        ],
      }),
      70n,
      10n * 5n + 10n,
    ],
    ['huge usage stays exact (no float)', plan({ overageUnitPriceMinor: 3 }), 9_007_199_254_740_993n, 27_021_597_764_222_979n],
  ];
  it.each(cases)('%s', (_name, p, usage, expected) => {
    expect(rateUsage(p, usage).amountMinor).toBe(expected);
  });

  it('refuses negative usage', () => {
    expect(() => rateUsage(plan(), -1n)).toThrow(PricingError);
  });

  it('tier flat fee is charged only once the tier is entered', () => {
    const tiers = [
      { upTo: 10, unitPriceMinor: 1, flatMinor: 0 },
      { upTo: null, unitPriceMinor: 1, flatMinor: 1000 },
    ];
    expect(rateTiers(tiers, 10n)).toBe(10n);
    expect(rateTiers(tiers, 11n)).toBe(1011n);
  });
});

describe('pricingFromPlan', () => {
  it.each([
    [
      'a tier bound that does not increase',
      [
        { upTo: 10, unitPriceMinor: 1 },
        { upTo: 5, unitPriceMinor: 1 },
        { upTo: null, unitPriceMinor: 1 },
      ],
    ],
    ['a closed last tier', [{ upTo: 10, unitPriceMinor: 1 }]],
    [
      'an open tier before the last',
      [
        { upTo: null, unitPriceMinor: 1 },
        { upTo: 5, unitPriceMinor: 1 },
      ],
    ],
    ['a negative price', [{ upTo: null, unitPriceMinor: -1 }]],
    ['a float price', [{ upTo: null, unitPriceMinor: 1.5 }]],
    ['not an array', { upTo: null }],
  ])('rejects tiers with %s', (_name, tiers) => {
    expect(() => plan({ tiers })).toThrow(PricingError);
  });
  it('rejects a zero block size', () => {
    expect(() => plan({ overageBlockSize: 0 })).toThrow(PricingError);
  });
});

describe('billing periods', () => {
  it.each([
    ['mid-month anchor', '2026-03-15T10:00:00Z', '2026-04-20T00:00:00Z', '2026-04-15T10:00:00Z', '2026-05-15T10:00:00Z'],
    ['31st anchor clamps to February 28', '2026-01-31T00:00:00Z', '2026-02-10T00:00:00Z', '2026-01-31T00:00:00Z', '2026-02-28T00:00:00Z'],
    [
      '31st anchor returns to the 31st after February',
      '2026-01-31T00:00:00Z',
      '2026-03-05T00:00:00Z',
      '2026-02-28T00:00:00Z',
      '2026-03-31T00:00:00Z',
    ],
    ['31st anchor clamps to the leap day', '2028-01-31T00:00:00Z', '2028-02-15T00:00:00Z', '2028-01-31T00:00:00Z', '2028-02-29T00:00:00Z'],
    [
      'leap-day anchor moves to Feb 28 in a common year',
      '2028-02-29T00:00:00Z',
      '2029-03-01T00:00:00Z',
      '2029-02-28T00:00:00Z',
      '2029-03-29T00:00:00Z',
    ],
    ['year end', '2026-12-31T23:00:00Z', '2027-01-01T00:00:00Z', '2026-12-31T23:00:00Z', '2027-01-31T23:00:00Z'],
    [
      'an instant at the period start belongs to the new period',
      '2026-01-10T00:00:00Z',
      '2026-02-10T00:00:00Z',
      '2026-02-10T00:00:00Z',
      '2026-03-10T00:00:00Z',
    ],
    ['an instant before the anchor', '2026-05-10T00:00:00Z', '2026-04-01T00:00:00Z', '2026-03-10T00:00:00Z', '2026-04-10T00:00:00Z'],
  ])('%s', (_n, anchor, at, start, end) => {
    const p = billingPeriodAt(d(anchor), d(at));
    expect(p.start.toISOString()).toBe(d(start).toISOString());
    expect(p.end.toISOString()).toBe(d(end).toISOString());
  });
  it('adds months across years backwards too', () => {
    expect(addAnchoredMonths(d('2026-03-31T00:00:00Z'), -1).toISOString()).toBe('2026-02-28T00:00:00.000Z');
  });
  it('truncates to the UTC hour', () => {
    expect(hourStart(d('2026-02-28T23:59:59.999Z').getTime()).toISOString()).toBe('2026-02-28T23:00:00.000Z');
  });
});

describe('previewInvoice', () => {
  const pro = plan({ name: 'Pro', flatFeeMinor: 2900, includedRequests: 10_000, overageUnitPriceMinor: 1 });
  const basic = plan({ name: 'Basic', flatFeeMinor: 900, includedRequests: 1_000, overageUnitPriceMinor: 2 });
  const feb2028 = { start: d('2028-02-01T00:00:00Z'), end: d('2028-03-01T00:00:00Z') }; // 29 days

  it('a whole period pays the flat fee plus overage', () => {
    const inv = previewInvoice({}, pro, 12_345n, feb2028);
    expect(inv.lines.map((l) => [l.kind, l.amountMinor])).toEqual([
      ['flat_fee', 2900n],
      ['usage', 2345n],
    ]);
    expect(inv.totalMinor).toBe(5245n);
    expect(inv.requests).toBe(12_345n);
  });

  it('a free plan previews to zero', () => {
    expect(previewInvoice({}, plan({ monthlyQuota: 1000, quotaMode: 'HARD_CAP' }), 1000n, feb2028).totalMinor).toBe(0n);
  });

  it('a mid-period change prorates both plans by seconds (leap February)', () => {
    // Basic for the first 10 of 29 days, Pro for the other 19.
    const at = d('2028-02-11T00:00:00Z');
    const inv = previewInvoice({ planChanges: [{ at, from: basic, usageBefore: 2_000n }] }, pro, 12_000n, feb2028);
    // Basic: 900 * 10/29 = 310.34 → 310; included 1000 * 10/29 = 344.8 → 345; 2000 - 345 = 1655 over at 2 = 3310.
    // Pro: 2900 * 19/29 = 1900; included 10000 * 19/29 = 6551.7 → 6552; 10000 - 6552 = 3448 over at 1.
    expect(inv.lines.map((l) => [l.kind, l.quantity, l.amountMinor])).toEqual([
      ['flat_fee', 1n, 310n],
      ['usage', 2_000n, 3310n],
      ['flat_fee', 1n, 1900n],
      ['usage', 10_000n, 3448n],
    ]);
    expect(inv.totalMinor).toBe(310n + 3310n + 1900n + 3448n);
  });

  it('rounds a prorated half cent up', () => {
    expect(divRoundHalfUp(5n, 2n)).toBe(3n);
    expect(divRoundHalfUp(4n, 3n)).toBe(1n);
    expect(divRoundHalfUp(-5n, 2n)).toBe(-3n);
  });

  it('prorates a change at a 31-day month end by seconds', () => {
    const jan = { start: d('2026-01-01T00:00:00Z'), end: d('2026-02-01T00:00:00Z') };
    const at = d('2026-01-31T12:00:00Z'); // 12 hours of 744 left on the new plan
    const inv = previewInvoice({ planChanges: [{ at, from: basic, usageBefore: 0n }] }, pro, 0n, jan);
    // Basic: 900 * 732/744 = 885.48 → 885; Pro: 2900 * 12/744 = 46.77 → 47.
    expect(inv.lines.filter((l) => l.kind === 'flat_fee').map((l) => l.amountMinor)).toEqual([885n, 47n]);
  });

  it.each([
    ['a change outside the period', [{ at: d('2028-03-02T00:00:00Z'), from: basic, usageBefore: 0n }], 10n],
    ['usage below the usage before the change', [{ at: d('2028-02-10T00:00:00Z'), from: basic, usageBefore: 50n }], 10n],
  ])('refuses %s', (_n, planChanges, usage) => {
    expect(() => previewInvoice({ planChanges }, pro, usage, feb2028)).toThrow(PricingError);
  });

  it('refuses an empty period', () => {
    expect(() => previewInvoice({}, pro, 0n, { start: feb2028.start, end: feb2028.start })).toThrow(PricingError);
  });
});
