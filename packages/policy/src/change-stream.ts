/**
 * The policy change stream (`keyspace.policyStream`): a Redis Stream with one entry per published
 * tenant version (`{t: tenantId, v: version}`) or deleted tenant (`{t: tenantId, d: '1'}`). The
 * stream's entry ids are a global sequence: a gateway remembers the last id it applied and reads
 * only what came after it, so an idle check costs a few hundred bytes whatever the tenant count.
 * Entries are trimmed to about POLICY_STREAM_MAXLEN; a reader that fell behind the trim (or whose
 * stream vanished with Redis' data) notices the gap and resynchronises from `policyVersions`.
 */

/** Entries kept (approximately, `MAXLEN ~`): several full republishes of 10k tenants. */
export const POLICY_STREAM_MAXLEN = 100_000;

export type PolicyChange = { tenantId: string; version: number } | { tenantId: string; deleted: true };

/** XADD field/value arguments for one change. */
export function policyChangeFields(change: PolicyChange): string[] {
  return 'deleted' in change ? ['t', change.tenantId, 'd', '1'] : ['t', change.tenantId, 'v', String(change.version)];
}

/** Reads one entry's flat field list; anything malformed is `null`, never a throw. */
export function decodePolicyChange(fields: readonly string[]): PolicyChange | null {
  let tenantId: string | null = null;
  let version: number | null = null;
  let deleted = false;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const k = fields[i];
    const v = fields[i + 1]!;
    if (k === 't') tenantId = v;
    else if (k === 'v') version = Number(v);
    else if (k === 'd') deleted = v === '1';
  }
  if (!tenantId) return null;
  if (deleted) return { tenantId, deleted: true };
  if (version === null || !Number.isSafeInteger(version)) return null;
  return { tenantId, version };
}

/** Compares two stream ids (`ms-seq`); negative when a is older than b. */
export function compareStreamIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const ms = BigInt(am) - BigInt(bm);
  if (ms !== 0n) return ms < 0n ? -1 : 1;
  const seq = BigInt(as) - BigInt(bs);
  return seq === 0n ? 0 : seq < 0n ? -1 : 1;
}
