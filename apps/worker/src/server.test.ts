import { afterEach, describe, expect, it } from 'vitest';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createLogger } from '@tollgate/config';
import { createMetrics } from './metrics';
import { createHttpServer, type HttpOptions } from './server';
import { fastUlid, isRequestId } from '@tollgate/policy';
import { loadWorkerCliConfig, loadWorkerConfig } from './env';

let server: Server | null = null;
afterEach(async () => {
  if (server) await new Promise<void>((r) => server!.close(() => r()));
  server = null;
});

async function start(over: Partial<HttpOptions> = {}) {
  server = createHttpServer({
    logger: createLogger('test', 'silent'),
    metrics: createMetrics(),
    ready: async () => ({ ready: true, checks: {} }),
    stripeWebhook: null,
    ...over,
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('worker http endpoints', () => {
  it('reports not ready (503, error envelope) when the database or Redis does not answer', async () => {
    const base = await start({
      ready: async () => {
        throw new Error('ECONNREFUSED 10.0.0.1:5432');
      },
    });
    const res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('unavailable');
    expect(JSON.stringify(body)).not.toContain('10.0.0.1');
  });

  it('serves health, readiness and Prometheus metrics', async () => {
    const base = await start();
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const m = await fetch(`${base}/metrics`);
    expect(m.headers.get('content-type')).toContain('text/plain');
    expect(await m.text()).toContain('tollgate_stripe_meter_events_total');
  });

  it('answers the webhook path with 404 when Stripe webhooks are not configured', async () => {
    const base = await start();
    const res = await fetch(`${base}/webhooks/stripe`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(404);
  });

  it("keeps a caller's request id in the one format (a ULID) and replaces anything else", async () => {
    const base = await start();
    const ask = async (id: string) => {
      const res = await fetch(`${base}/nope`, { headers: { 'x-request-id': id } });
      const body = (await res.json()) as { error: { requestId: string } };
      expect(res.headers.get('x-request-id')).toBe(body.error.requestId);
      expect(isRequestId(body.error.requestId)).toBe(true);
      return body.error.requestId;
    };
    const ulid = fastUlid();
    expect(await ask(ulid)).toBe(ulid);
    for (const hostile of [
      'req-123',
      'x'.repeat(500),
      `${ulid}0`,
      ulid.toLowerCase(),
      `${ulid.slice(0, 25)}\t`,
      '550e8400-e29b-41d4-a716-446655440000',
    ])
      expect(await ask(hostile)).not.toBe(hostile);
  });
});

describe('worker configuration', () => {
  it('applies defaults and needs only DATABASE_URL', () => {
    const c = loadWorkerConfig({ DATABASE_URL: 'postgresql://u@h:5432/db' });
    expect(c).toMatchObject({ port: 9090, concurrency: 48, redisPrefix: 'tg', databaseUrl: 'postgresql://u@h:5432/db' });
    expect(c.stripe).toEqual({
      secretKey: undefined,
      webhookSecret: undefined,
      host: undefined,
      port: undefined,
      protocol: undefined,
      timeoutMs: 20_000,
    });
  });
  it('names every bad variable at once', () => {
    let message = '';
    try {
      loadWorkerConfig({ WORKER_PORT: '99999', STRIPE_API_PROTOCOL: 'ftp', WORKER_CONCURRENCY: '0' });
    } catch (err) {
      message = (err as Error).message;
    }
    for (const name of ['DATABASE_URL', 'WORKER_PORT', 'WORKER_CONCURRENCY', 'STRIPE_API_PROTOCOL']) expect(message).toContain(name);
  });
  it('returns camelCase settings only, no raw variable names', () => {
    const c = loadWorkerConfig({ DATABASE_URL: 'postgresql://u@h:5432/db', STRIPE_SECRET_KEY: 'sk_test_x', METER_SETTLE_MS: '0' });
    expect(c.stripe.secretKey).toBe('sk_test_x');
    expect(c.meterSettleMs).toBe(0);
    expect(Object.keys(c).filter((k) => /^[A-Z_]+$/.test(k))).toEqual([]);
  });
  it('the operator CLI needs a postgresql:// DATABASE_URL', () => {
    expect(loadWorkerCliConfig({ DATABASE_URL: 'postgres://u@h/db' })).toMatchObject({
      databaseUrl: 'postgres://u@h/db',
      redisPrefix: 'tg',
    });
    expect(() => loadWorkerCliConfig({ DATABASE_URL: 'mysql://u@h/db' })).toThrow(/DATABASE_URL: expected a postgresql:\/\/ URL/);
  });
});
