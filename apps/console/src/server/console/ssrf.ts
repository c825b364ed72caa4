import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { classifyAddress, METADATA_HOST_NAMES } from '@tollgate/policy/addresses';

// The address classes (private, metadata in every IPv6 embedding) live in @tollgate/policy: the
// gateway checks them again at connect time, against DNS rebinding.
export { classifyAddress, type AddressClass } from '@tollgate/policy/addresses';

const LOCAL_NAMES = /(^|\.)(localhost|local|internal|localdomain|home\.arpa)\.?$/i;

export type Resolver = (host: string) => Promise<string[]>;

const systemResolver: Resolver = async (host) => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

export type UpstreamCheck = { ok: true; url: string } | { ok: false; reason: string };

/**
 * Decides whether the gateway may forward to `raw`. Host names are resolved and every address
 * must pass, so a public name pointing at 127.0.0.1 is refused like the literal.
 */
export async function checkUpstreamUrl(raw: string, opts: { allowPrivate: boolean; resolve?: Resolver }): Promise<UpstreamCheck> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: 'is not a valid URL' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, reason: 'must use http or https' };
  if (url.username || url.password) return { ok: false, reason: 'must not contain credentials' };
  if (url.search || url.hash) return { ok: false, reason: 'must not carry a query string or fragment' };
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!host) return { ok: false, reason: 'needs a host' };
  if (METADATA_HOST_NAMES.test(host)) return { ok: false, reason: 'points at a cloud metadata service' };

  let addresses: string[];
  if (isIP(host)) {
    addresses = [host];
  } else {
    if (LOCAL_NAMES.test(host) && !opts.allowPrivate) {
      return { ok: false, reason: 'points at a local or internal host name (allow private targets in settings to use it)' };
    }
    try {
      addresses = await (opts.resolve ?? systemResolver)(host);
    } catch {
      return { ok: false, reason: `host ${host} does not resolve` };
    }
    if (addresses.length === 0) return { ok: false, reason: `host ${host} does not resolve` };
  }
  for (const addr of addresses) {
    const cls = classifyAddress(addr);
    if (cls === 'metadata') return { ok: false, reason: 'points at a cloud metadata service' };
    if (cls === 'private' && !opts.allowPrivate) {
      return {
        ok: false,
        reason: `resolves to a private, loopback or link-local address (${addr}); allow private targets in settings to use it`,
      };
    }
  }
  // Normalised form (no trailing slash) so the gateway joins paths predictably.
  const normalised = url.toString().replace(/\/$/, '');
  return { ok: true, url: normalised };
}
