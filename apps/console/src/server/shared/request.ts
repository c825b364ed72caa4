// Request facts both halves of the console need: where a request came from, and that a form
// post came from our own pages.
import { headers } from 'next/headers';
import { getRuntime } from './runtime';
import { isSameOrigin } from './csrf';
import { ServiceError } from './context';

/**
 * The client address for rate limits and the audit log. Next fills X-Forwarded-For from the
 * socket when a request arrives without one; behind a proxy (TRUST_PROXY) the right-most entry
 * is the one our proxy appended, so a client-sent value can't spoof it. Without a proxy a
 * client can still send its own header, which is why logins are also limited per e-mail.
 */
export async function clientIp(): Promise<string | null> {
  const { config } = getRuntime();
  const h = await headers();
  const xff = h.get('x-forwarded-for');
  if (xff) {
    const parts = xff
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean);
    const ip = config.trustProxy ? parts[parts.length - 1] : parts[0];
    if (ip) return ip.slice(0, 64);
  }
  return h.get('x-real-ip')?.slice(0, 64) ?? null;
}

/** Server actions' entry: refuses cross-site posts before anything else runs. */
export async function assertSameOrigin(): Promise<void> {
  const { config } = getRuntime();
  if (!isSameOrigin(await headers(), config.consoleUrl)) {
    throw new ServiceError('forbidden', 'cross-site request refused');
  }
}
