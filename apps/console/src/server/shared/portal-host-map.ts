import { getRuntime } from './runtime';
import { createPortalHostMap, type PortalHostMap } from './portal-host';

// One map per process, on globalThis so src/proxy.ts and the settings action (separate bundles)
// share it and a saved change is seen at once here; other instances see it within the TTL.
const holder = globalThis as unknown as { __tollgatePortalHosts?: PortalHostMap };

export function portalHostMap(): PortalHostMap {
  if (!holder.__tollgatePortalHosts) {
    const rt = getRuntime();
    holder.__tollgatePortalHosts = createPortalHostMap(
      () => rt.db.tenant.findMany({ where: { portalHost: { not: null } }, select: { slug: true, portalHost: true } }),
      { onError: (err) => rt.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not load portal hosts') },
    );
  }
  return holder.__tollgatePortalHosts;
}

/** The console's own host name: never rewritten, never registrable as a portal host. */
export function consoleHostname(): string {
  return new URL(getRuntime().config.consoleUrl).hostname.toLowerCase();
}
