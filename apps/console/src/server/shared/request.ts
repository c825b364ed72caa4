// Request facts both halves of the console need: where a request came from, and that a form
// post came from our own pages.
import { headers } from 'next/headers';
import { getRuntime } from './runtime';
import { isSameOrigin } from './csrf';
import { ServiceError } from './context';
import { clientIpFrom } from './request-scope';

/** clientIpFrom for pages and server actions. */
export async function clientIp(): Promise<string | null> {
  return clientIpFrom(await headers());
}

/** Server actions' entry: refuses cross-site posts before anything else runs. */
export async function assertSameOrigin(): Promise<void> {
  const { config } = getRuntime();
  if (!isSameOrigin(await headers(), config.consoleUrl)) {
    throw new ServiceError('forbidden', 'cross-site request refused');
  }
}
