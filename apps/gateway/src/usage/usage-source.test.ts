import { describe, expect, it } from 'vitest';
import { spoolFileName } from '@tollgate/usage';
import { usageSourceName } from './usage-source';

describe('usageSourceName', () => {
  it('gives each cluster worker of one GATEWAY_INSTANCE_ID its own name, hence its own spool file', () => {
    const names = [0, 1, 2].map((i) => usageSourceName('pod-a', i, true));
    expect(names).toEqual(['pod-a-0', 'pod-a-1', 'pod-a-2']);
    expect(new Set(names.map(spoolFileName)).size).toBe(3);
  });

  it('keeps GATEWAY_INSTANCE_ID as it is in a single process, and is stable for a slot across restarts', () => {
    expect(usageSourceName('pod-a', 0, false)).toBe('pod-a');
    expect(usageSourceName('pod-a', 1, true)).toBe(usageSourceName('pod-a', 1, true));
  });

  it('falls back to {hostname}-{worker index}', () => {
    expect(usageSourceName(null, 3, true, 'gw-host')).toBe('gw-host-3');
    expect(usageSourceName(null, 0, false, 'gw-host')).toBe('gw-host-0');
  });
});
