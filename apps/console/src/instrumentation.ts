/** Parses the environment and opens the shared clients at boot, so bad config fails the start, not the first request. */
export async function register() {
  if (process.env.NEXT_RUNTIME === 'nodejs') {
    const { getRuntime } = await import('./server/shared/runtime');
    getRuntime();
  }
}
