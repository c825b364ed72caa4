/**
 * Cross-site request check for cookie-authenticated mutations: the browser's Origin (or, when
 * absent, Referer) must be the console's own origin or the host the request was sent to.
 */
export function isSameOrigin(headers: Headers, consoleUrl: string): boolean {
  const origin = headers.get('origin') ?? refererOrigin(headers.get('referer'));
  if (!origin || origin === 'null') return false;
  const allowed = new Set<string>([new URL(consoleUrl).origin]);
  const host = headers.get('x-forwarded-host') ?? headers.get('host');
  if (host) {
    const proto = headers.get('x-forwarded-proto') ?? new URL(consoleUrl).protocol.replace(':', '');
    allowed.add(`${proto}://${host}`);
  }
  return allowed.has(origin);
}

function refererOrigin(referer: string | null): string | null {
  if (!referer) return null;
  try {
    return new URL(referer).origin;
  } catch {
    return null;
  }
}
