import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testEnv, uniquePrefix } from '../harness/index';
import { ensureConsoleBuild, startConsole, type Child } from '../e2e/platform';

// Metrics scraping by strangers: the console's /metrics (process, request and route figures) is
// on the public port, so it answers only a scraper holding CONSOLE_METRICS_TOKEN, and without
// the variable it doesn't exist (404).

const SESSION_SECRET = 'metrics-test-session-secret-0123456789abcdef';
const TOKEN = 'metrics-token-for-the-test-0123456789';
let withToken: Child & { base: string };
let withoutToken: Child & { base: string };

beforeAll(async () => {
  await ensureConsoleBuild();
  const env = testEnv();
  const common = { DATABASE_URL: env.databaseUrl, REDIS_URL: env.redisUrl, SESSION_SECRET };
  [withToken, withoutToken] = await Promise.all([
    startConsole({ ...common, REDIS_PREFIX: uniquePrefix('metrics-a'), CONSOLE_METRICS_TOKEN: TOKEN }),
    startConsole({ ...common, REDIS_PREFIX: uniquePrefix('metrics-b') }),
  ]);
}, 600_000);

afterAll(async () => {
  await Promise.all([withToken?.stop(), withoutToken?.stop()]);
});

const scrape = (base: string, headers: Record<string, string> = {}) => fetch(`${base}/metrics`, { headers });

describe('console /metrics', () => {
  it('is 404 when no token is configured, whatever is sent', async () => {
    const tries: Array<Record<string, string>> = [{}, { authorization: `Bearer ${TOKEN}` }, { authorization: 'Bearer ' }];
    for (const headers of tries) {
      const res = await scrape(withoutToken.base, headers);
      expect(res.status).toBe(404);
      expect(await res.text()).not.toContain('process_cpu');
    }
  });

  it('refuses a scrape without a token: 401 with a Bearer challenge', async () => {
    const res = await scrape(withToken.base);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await res.text()).not.toContain('process_cpu');
  });

  it('refuses wrong and malformed tokens', async () => {
    const wrong = [
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.slice(0, -1)}`,
      `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`,
      TOKEN,
      `Bearer ${TOKEN} ${TOKEN}`,
      `Bearer ${'a'.repeat(5000)}`,
    ];
    for (const authorization of wrong) {
      const res = await scrape(withToken.base, { authorization });
      expect(res.status, authorization.slice(0, 30)).toBe(401);
      expect(await res.text()).not.toContain('process_cpu');
    }
    // The token in the query string is not a token.
    expect((await fetch(`${withToken.base}/metrics?token=${TOKEN}`)).status).toBe(401);
  });

  it('serves Prometheus text to the right token', async () => {
    for (const scheme of ['Bearer', 'bearer']) {
      const res = await scrape(withToken.base, { authorization: `${scheme} ${TOKEN}` });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/plain');
      expect(await res.text()).toContain('process_cpu_user_seconds_total');
    }
  });
});
