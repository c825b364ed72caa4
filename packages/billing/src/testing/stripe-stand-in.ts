import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { parseStripeForm } from './stripe-form';
import { routeStripeRequest } from './stripe-routes';
import { newObjId, StripeState } from './stripe-state';

/**
 * A small local Stripe for tests: the endpoints Tollgate calls, with Stripe's request encoding
 * (form-encoded, bracketed keys), response shapes and error envelope, reached by the real SDK
 * through its host/port/protocol options. It records every request, can be told to fail the
 * next N calls (429, 500, a hung request, or a response lost after the work was done), replays
 * Idempotency-Key responses and refuses a meter event whose identifier it has seen, as Stripe does.
 */

export type Failure = { kind: 'status'; status: 429 | 500 | 502 | 503 } | { kind: 'hang' } | { kind: 'lost-response' };

export type RecordedRequest = {
  method: string;
  path: string;
  query: Record<string, string>;
  body: Record<string, unknown>;
  account: string | null;
  idempotencyKey: string | null;
  status: number;
  at: number;
};

export class StripeStandIn extends StripeState {
  readonly requests: RecordedRequest[] = [];
  private failures: Array<{ failure: Failure; path?: RegExp }> = [];
  private idempotent = new Map<string, { status: number; body: unknown }>();
  private held = new Set<ServerResponse>();
  private sockets = new Set<Socket>();
  private server: Server;
  port = 0;

  constructor(readonly apiKey = 'sk_test_standin') {
    super();
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    for (const res of this.held) res.destroy();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  /** SDK settings that point the real client here. */
  get settings() {
    return { secretKey: this.apiKey, host: '127.0.0.1', port: this.port, protocol: 'http' as const };
  }

  /** The next `count` calls (matching `path`, if given) fail this way. */
  failNext(count: number, failure: Failure, path?: RegExp): void {
    for (let i = 0; i < count; i++) this.failures.push(path ? { failure, path } : { failure });
  }

  /** Sum of accepted meter event values per (account, event name, customer). */
  meterTotals(): Map<string, number> {
    const totals = new Map<string, number>();
    for (const e of this.meterEvents) {
      const k = `${e.account ?? ''}|${e.event_name}|${e.customer}`;
      totals.set(k, (totals.get(k) ?? 0) + e.value);
    }
    return totals;
  }

  meterTotal(): number {
    return this.meterEvents.reduce((a, e) => a + e.value, 0);
  }

  private takeFailure(path: string): Failure | null {
    const i = this.failures.findIndex((f) => !f.path || f.path.test(path));
    if (i < 0) return null;
    return this.failures.splice(i, 1)[0]!.failure;
  }

  private async handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? '/', 'http://stand-in');
    const method = req.method ?? 'GET';
    const body = parseStripeForm(method === 'GET' ? '' : Buffer.concat(chunks).toString('utf8'));
    const query = Object.fromEntries(url.searchParams);
    const account = typeof req.headers['stripe-account'] === 'string' ? req.headers['stripe-account'] : null;
    const idem = typeof req.headers['idempotency-key'] === 'string' ? req.headers['idempotency-key'] : null;
    const rec: RecordedRequest = { method, path: url.pathname, query, body, account, idempotencyKey: idem, status: 0, at: Date.now() };
    this.requests.push(rec);

    const reply = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      rec.status = status;
      const text = JSON.stringify(payload);
      res.writeHead(status, { 'content-type': 'application/json', 'request-id': newObjId('req'), ...headers });
      res.end(text);
    };
    const hold = () => {
      rec.status = -1;
      this.held.add(res);
      res.on('close', () => this.held.delete(res));
    };

    if (req.headers.authorization !== `Bearer ${this.apiKey}`) {
      return reply(401, { error: { type: 'invalid_request_error', message: 'Invalid API Key provided.' } });
    }
    const failure = this.takeFailure(url.pathname);
    if (failure?.kind === 'status') {
      const type = failure.status === 429 ? 'rate_limit_error' : 'api_error';
      const code = failure.status === 429 ? 'rate_limit' : undefined;
      return reply(failure.status, {
        error: { type, message: failure.status === 429 ? 'Too many requests.' : 'An unknown error occurred.', ...(code ? { code } : {}) },
      });
    }
    if (failure?.kind === 'hang') return hold();

    const key = idem ? `${account ?? ''}|${method}|${url.pathname}|${idem}` : null;
    if (key && this.idempotent.has(key)) {
      const prev = this.idempotent.get(key)!;
      return failure?.kind === 'lost-response' ? hold() : reply(prev.status, prev.body, { 'idempotent-replayed': 'true' });
    }
    const out = routeStripeRequest(this, method, url.pathname, body, query, account);
    if (key && out.status < 500) this.idempotent.set(key, out);
    if (failure?.kind === 'lost-response') return hold();
    return reply(out.status, out.body, out.headers);
  }
}

export async function startStripeStandIn(apiKey?: string): Promise<StripeStandIn> {
  return new StripeStandIn(apiKey).start();
}
