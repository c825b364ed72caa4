// SIGTERM to a gateway (one process per pod, as infra/k8s runs it) under keep-alive load: it says not-ready for
// GATEWAY_SHUTDOWN_NOT_READY_MS while still serving, then answers in-flight and new requests on
// open connections with `Connection: close` (never 503), stops accepting, flushes its usage and
// exits 0. A second gateway on the same Redis stands for the rest of the fleet.
//
// What a client is expected to do (docs/architecture.md, "Graceful stop"): follow
// `Connection: close`, and retry a request once on a new connection when its connection was
// refused or closed before any byte of a response arrived. That is always safe: the gateway only
// ever closes a connection on which no request is being read or answered, so such a request never
// reached the upstream. (undici, browsers, Go's net/http and most proxies do this for idempotent
// requests on their own; this client does it for every request and counts it.) With that, the
// assertion is 0 errors: every request ends in a 2xx, and billed = served.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { waitFor } from '../harness/index';
import type { GatewayProcess } from '../gateway/fixtures';
import { billedAndCounted, createTenant, settle, startStack, warmUp, type Stack, type Tenant } from './stack';

const RATE = 200;
const LOAD_MS = 7_000;
const SIGTERM_AT_MS = 2_000;
const NOT_READY_MS = 1_500;

type Outcome = {
  status: number;
  via: 'draining' | 'other';
  close: boolean;
  retried: boolean;
  error: string | null;
  /** Why the first attempt got no response, when it was retried. */
  firstFailure?: string;
  /** When the answer arrived, ms after the load started. */
  receivedAt?: number;
};

describe('SIGTERM under keep-alive load', () => {
  let stack: Stack;
  let t: Tenant;
  let draining: GatewayProcess;
  const figures: Record<string, unknown> = {};
  const agentA = new Agent({ connections: 32, keepAliveTimeout: 30_000, pipelining: 1 });
  const agentB = new Agent({ connections: 32, keepAliveTimeout: 30_000, pipelining: 1 });

  beforeAll(async () => {
    stack = await startStack('gwdrain', async (db, upstream) => {
      t = await createTenant(db, upstream);
    });
    draining = await stack.spawnGateway({ GATEWAY_WORKERS: '1', GATEWAY_SHUTDOWN_NOT_READY_MS: String(NOT_READY_MS) });
    await warmUp(stack, t);
    await waitFor(async () => (await fetch(`http://127.0.0.1:${draining.adminPort}/readyz`)).status === 200, {
      timeoutMs: 30_000,
      what: 'the gateway to stop ready',
    });
  }, 240_000);
  afterAll(async () => {
    await agentA.close();
    await agentB.close();
    await stack?.stop();
    process.stdout.write(`fault figures: ${JSON.stringify(figures)}\n`);
  });

  /** One attempt; 'no-response' when the connection was refused or closed before a response began. */
  async function attempt(port: number, agent: Agent): Promise<{ status: number; close: boolean } | { noResponse: string }> {
    let res;
    try {
      res = await request(`http://127.0.0.1:${port}/echo/item`, {
        headers: { host: t.host, 'x-api-key': t.liveKey },
        dispatcher: agent,
        headersTimeout: 30_000,
        bodyTimeout: 30_000,
      });
    } catch (err) {
      return { noResponse: (err as { code?: string }).code ?? (err as Error).message };
    }
    // A body cut short after the status line is an error, not something to retry.
    await res.body.dump();
    return { status: res.statusCode, close: String(res.headers.connection ?? '').toLowerCase() === 'close' };
  }

  async function call(): Promise<Outcome> {
    try {
      const first = await attempt(draining.port, agentA);
      if ('status' in first) return { ...first, via: 'draining', retried: false, error: null };
      // The documented client behaviour: once more, on a new connection (here: to the other gateway).
      const again = await attempt(stack.gateway.port, agentB);
      if ('status' in again) return { ...again, via: 'other', retried: true, error: null, firstFailure: first.noResponse };
      return { status: 0, via: 'other', close: false, retried: true, error: `${first.noResponse} then ${again.noResponse}` };
    } catch (err) {
      return { status: 0, via: 'draining', close: false, retried: false, error: (err as Error).message };
    }
  }

  it('reports not-ready while serving, then closes connections with `Connection: close`: 0 client errors, billed = served', async () => {
    const before = await billedAndCounted(stack.db, t);
    const outcomes: Promise<Outcome>[] = [];
    const total = Math.round((LOAD_MS / 1000) * RATE);
    const started = performance.now();
    let termAt = 0;
    let exited: Promise<number | null> | null = null;
    const readyDuringNotReady: number[] = [];
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        const elapsed = performance.now() - started;
        if (!exited && elapsed >= SIGTERM_AT_MS) {
          termAt = performance.now();
          exited = draining.stop('SIGTERM');
        }
        const due = Math.min(total, Math.floor((elapsed / 1000) * RATE));
        while (outcomes.length < due) {
          outcomes.push(
            call().then((o) => {
              o.receivedAt = performance.now() - started;
              return o;
            }),
          );
        }
        if (outcomes.length >= total) {
          clearInterval(tick);
          resolve();
        }
      }, 5);
      // The not-ready phase: /readyz answers 503 (polled like a balancer would).
      void (async () => {
        await waitFor(() => termAt > 0, { timeoutMs: 10_000, intervalMs: 5 });
        while (performance.now() - termAt < NOT_READY_MS - 300) {
          readyDuringNotReady.push((await fetch(`http://127.0.0.1:${draining.adminPort}/readyz`).catch(() => null))?.status ?? 0);
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
    });
    const done = await Promise.all(outcomes);
    const code = await exited!;
    // Answered by the stopping gateway after SIGTERM, before its drain began: served normally (keep-alive).
    const termMs = termAt - started;
    const servedWhileNotReady = done.filter(
      (o) =>
        o.via === 'draining' && o.status === 200 && !o.close && o.receivedAt! > termMs + 100 && o.receivedAt! < termMs + NOT_READY_MS - 100,
    ).length;
    const ok = done.filter((o) => o.status >= 200 && o.status < 300).length;
    const errors = done.filter((o) => o.error !== null || o.status < 200 || o.status >= 300);
    const after = await settle(stack, t, before.requests + done.length);
    const fig = {
      sent: done.length,
      ok,
      clientErrors: errors.length,
      errorSamples: errors.slice(0, 5).map((o) => o.error ?? o.status),
      status503: done.filter((o) => o.status === 503).length,
      retriedOnNewConnection: done.filter((o) => o.retried).length,
      firstFailures: Object.fromEntries(
        [...new Set(done.map((o) => o.firstFailure).filter(Boolean))].map((f) => [f, done.filter((o) => o.firstFailure === f).length]),
      ),
      connectionCloseResponses: done.filter((o) => o.close).length,
      servedByDraining: done.filter((o) => o.via === 'draining' && o.status === 200).length,
      servedWhileNotReady,
      readyzDuringNotReady: readyDuringNotReady,
      exitCode: code,
      billed: after.ledger - before.ledger,
      rollup2xx: after.ok - before.ok,
    };
    figures.drain = fig;
    expect(code).toBe(0);
    expect(errors).toEqual([]);
    expect(fig.status503).toBe(0);
    // Not ready, still serving.
    // (The first poll may beat the signal's delivery; from the first 503 on, it stays 503.)
    const firstNotReady = readyDuringNotReady.indexOf(503);
    expect(firstNotReady).toBeGreaterThanOrEqual(0);
    expect(readyDuringNotReady.slice(firstNotReady).every((s) => s === 503)).toBe(true);
    expect(servedWhileNotReady).toBeGreaterThan(0);
    // The drain told open connections to close rather than dropping them.
    expect(fig.connectionCloseResponses).toBeGreaterThan(0);
    expect({ billed: fig.billed, rollup2xx: fig.rollup2xx }).toEqual({ billed: ok, rollup2xx: ok });
  }, 180_000);
});
