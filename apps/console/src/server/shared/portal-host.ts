import { z } from 'zod';

// A tenant's portal on its own host (Tenant.portalHost, e.g. developers.acme.com). src/proxy.ts
// rewrites such a request to /portal/{slug}/… and marks it with PORTAL_HOST_HEADER; pages then
// render links, redirects and cookies for the root of that host (ADR 0011).

/** Set by the proxy on rewritten requests only; the proxy deletes any client-sent copy first. */
export const PORTAL_HOST_HEADER = 'x-tollgate-portal-host';

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * The hostname of a Host header: lowercased, port and trailing dot removed; null when it is not
 * a plain DNS name (IP literals and garbage never match a portal host).
 */
export function hostnameOf(hostHeader: string | null | undefined): string | null {
  if (!hostHeader || hostHeader.length > 260) return null;
  const h = hostHeader
    .trim()
    .toLowerCase()
    .replace(/:\d{1,5}$/, '')
    .replace(/\.$/, '');
  if (h.length === 0 || h.length > 253) return null;
  const labels = h.split('.');
  return labels.every((l) => LABEL.test(l)) ? h : null;
}

/** What an owner may register: a DNS name with at least two labels, not an IP address, no port. */
export const PortalHostname = z
  .string({ error: 'must be text' })
  .trim()
  .toLowerCase()
  .max(253, 'must be at most 253 characters')
  .transform((s) => s.replace(/\.$/, ''))
  .refine(
    (s) => s.length > 0 && !/[:/\s@]/.test(s) && hostnameOf(s) === s,
    'must be a host name like developers.example.com (no scheme, port or path)',
  )
  .refine((s) => s.includes('.'), 'must have a domain, like developers.example.com')
  .refine((s) => !/^[0-9.]+$/.test(s), 'must be a host name, not an IP address')
  .refine((s) => !/(^|\.)localhost$/.test(s), 'must not be localhost');

export type PortalHostRow = { slug: string; portalHost: string | null };

export type PortalHostMap = {
  /** The slug of the tenant whose portal host this is, or null. */
  lookup(hostname: string): Promise<string | null>;
  /** Forget the snapshot; the next lookup reloads (called when an owner changes the host). */
  invalidate(): void;
};

/**
 * All registered portal hosts in one in-memory map, reloaded at most once per TTL by one query
 * (concurrent lookups share it). Random Host headers cost a map lookup, never a query each, and a
 * change shows on every console instance within the TTL. If a reload fails the last map is kept.
 */
export function createPortalHostMap(
  load: () => Promise<PortalHostRow[]>,
  opts: { ttlMs?: number; retryMs?: number; now?: () => number; onError?: (err: unknown) => void } = {},
): PortalHostMap {
  const ttlMs = opts.ttlMs ?? 10_000;
  const retryMs = opts.retryMs ?? 1_000;
  const now = opts.now ?? Date.now;
  let map: Map<string, string> | null = null;
  let expires = 0;
  let loading: Promise<void> | null = null;
  let generation = 0;

  const refresh = () => {
    if (!loading) {
      const gen = generation;
      const p: Promise<void> = load()
        .then((rows) => {
          if (gen !== generation) return;
          const next = new Map<string, string>();
          for (const r of rows) if (r.portalHost) next.set(r.portalHost.toLowerCase(), r.slug);
          map = next;
          expires = now() + ttlMs;
        })
        .catch((err: unknown) => {
          opts.onError?.(err);
          if (gen === generation) expires = now() + retryMs;
        })
        .finally(() => {
          if (loading === p) loading = null;
        });
      loading = p;
    }
    return loading;
  };

  return {
    async lookup(hostname) {
      if (now() >= expires) await refresh();
      return map?.get(hostname) ?? null;
    },
    invalidate() {
      generation++;
      expires = 0;
      loading = null;
    },
  };
}
