import { describe, expect, it } from 'vitest';
import { FairShare } from './fair-share';

describe('FairShare', () => {
  it('admits everything while the process is not saturated', () => {
    const f = new FairShare({ inflightLimit: 100, loopDelayMs: 1e9 });
    for (let i = 0; i < 99; i++) expect(f.admit('a')).toBe(true);
    expect(f.admit('b')).toBe(true);
    expect(f.total).toBe(100);
    f.stop();
  });

  it('when saturated, sheds the tenant over its share first and keeps admitting the one within it', () => {
    const shed: string[] = [];
    const f = new FairShare({ inflightLimit: 10, loopDelayMs: 1e9, minShare: 2, onShed: (t) => shed.push(t) });
    for (let i = 0; i < 10; i++) expect(f.admit('flood')).toBe(true);
    // Saturated now. B arrives: the flood has asked ten times what B has.
    expect(f.admit('b')).toBe(true);
    expect(f.admit('flood')).toBe(false);
    // B keeps being admitted (it asks far less), even holding more in flight than its one.
    for (let i = 0; i < 4; i++) expect(f.admit('b')).toBe(true);
    for (let i = 0; i < 5; i++) expect(f.admit('flood')).toBe(false);
    expect(shed).toEqual(Array(6).fill('flood'));
    // Requests that finish free the share again.
    for (let i = 0; i < 10; i++) f.release('flood');
    for (let i = 0; i < 5; i++) f.release('b');
    expect(f.total).toBe(0);
    expect(f.inFlightOf('flood')).toBe(0);
    expect(f.admit('flood')).toBe(true);
    f.stop();
  });

  it('never sheds a tenant that is alone', () => {
    const f = new FairShare({ inflightLimit: 1, loopDelayMs: 1e9 });
    for (let i = 0; i < 20; i++) expect(f.admit('only')).toBe(true);
    expect(f.shed).toBe(0);
    f.stop();
  });
});
