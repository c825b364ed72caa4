import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomBytes } from 'node:crypto';

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

export type MeterEventRecord = {
  identifier: string;
  event_name: string;
  customer: string;
  value: number;
  timestamp: number;
  account: string | null;
};

type Obj = Record<string, unknown> & { id: string };

/** Parses Stripe's form encoding: `a[b][0][c]=v` → { a: { b: [{ c: 'v' }] } }. */
export function parseStripeForm(text: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [rawKey, value] of new URLSearchParams(text)) {
    const parts = rawKey.split(/\[|\]\[|\]/).filter((p, i) => p !== '' || i === 0);
    let node: Record<string, unknown> | unknown[] = out;
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      const last = i === parts.length - 1;
      const key: string | number = Array.isArray(node) ? Number(p) : p;
      if (last) {
        (node as Record<string | number, unknown>)[key] = value;
      } else {
        const nextIsIndex = /^\d+$/.test(parts[i + 1]!);
        const existing = (node as Record<string | number, unknown>)[key];
        const child = existing ?? (nextIsIndex ? [] : {});
        (node as Record<string | number, unknown>)[key] = child;
        node = child as Record<string, unknown>;
      }
    }
  }
  return out;
}

const now = () => Math.floor(Date.now() / 1000);
const newObjId = (prefix: string) => `${prefix}_${randomBytes(12).toString('hex')}`;

export class StripeStandIn {
  readonly requests: RecordedRequest[] = [];
  readonly meterEvents: MeterEventRecord[] = [];
  readonly objects = new Map<string, Obj>();
  private failures: Array<{ failure: Failure; path?: RegExp }> = [];
  private idempotent = new Map<string, { status: number; body: unknown }>();
  private held = new Set<ServerResponse>();
  private sockets = new Set<Socket>();
  private server: Server;
  port = 0;

  constructor(readonly apiKey = 'sk_test_standin') {
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
    const out = this.route(method, url.pathname, body, query, account);
    if (key && out.status < 500) this.idempotent.set(key, out);
    if (failure?.kind === 'lost-response') return hold();
    return reply(out.status, out.body, out.headers);
  }

  private store(prefix: string, object: string, fields: Record<string, unknown>, account: string | null): Obj {
    const o: Obj = { id: newObjId(prefix), object, created: now(), livemode: false, metadata: {}, ...fields };
    this.objects.set(`${account ?? ''}|${o.id}`, o);
    return o;
  }

  private subscriptionItem(subscriptionId: string, priceId: string, account: string | null): Record<string, unknown> {
    const price = this.get(priceId, account) ?? { id: priceId, object: 'price' };
    const start = now();
    return {
      id: newObjId('si'),
      object: 'subscription_item',
      subscription: subscriptionId,
      price,
      quantity: 1,
      current_period_start: start,
      current_period_end: start + 30 * 86_400,
    };
  }

  private createSubscription(customer: string, prices: string[], metadata: Record<string, string>, account: string | null): Obj {
    const sub = this.store(
      'sub',
      'subscription',
      {
        customer,
        status: 'active',
        cancel_at_period_end: false,
        canceled_at: null,
        trial_end: null,
        metadata,
        items: { object: 'list', data: [] },
      },
      account,
    );
    (sub.items as { data: unknown[] }).data = prices.map((p) => this.subscriptionItem(sub.id, p, account));
    return sub;
  }

  /**
   * What Stripe does when the developer pays: the session completes and a subscription exists.
   * Returns the events Stripe would send, for a test to sign and deliver.
   */
  completeCheckout(sessionId: string, account: string | null = null): { subscription: Obj; events: Array<Record<string, unknown>> } {
    const session = this.get(sessionId, account);
    if (!session) throw new Error(`no checkout session ${sessionId}`);
    const prices = (session.line_items as Array<{ price: string }>).map((i) => i.price);
    const metadata = ((session.subscription_data as { metadata?: Record<string, string> } | null)?.metadata ??
      session.metadata ??
      {}) as Record<string, string>;
    const subscription = this.createSubscription(String(session.customer), prices, metadata, account);
    Object.assign(session, { status: 'complete', payment_status: 'paid', subscription: subscription.id });
    const event = (type: string, object: unknown, created: number) => ({
      id: newObjId('evt'),
      object: 'event',
      api_version: '2026-10-28.endive',
      created,
      livemode: false,
      pending_webhooks: 1,
      type,
      data: { object },
      ...(account ? { account } : {}),
    });
    const t = now();
    return {
      subscription,
      events: [
        event('checkout.session.completed', { ...session }, t),
        event('customer.subscription.created', JSON.parse(JSON.stringify(subscription)), t),
      ],
    };
  }

  private invoiceSeq = 0;

  /**
   * What Stripe does at the end of a subscription's period: an invoice for its licensed prices
   * (plus `usageMinor` of metered usage) is finalized, then paid. Returns the invoice and the
   * `invoice.finalized` and `invoice.paid` events, for a test to sign and deliver.
   */
  closeInvoice(
    subscriptionId: string,
    opts: { usageMinor?: number; account?: string | null } = {},
  ): { invoice: Obj; events: Array<Record<string, unknown>> } {
    const account = opts.account ?? null;
    const sub = this.get(subscriptionId, account);
    if (!sub) throw new Error(`no subscription ${subscriptionId}`);
    const items = (sub.items as { data: Array<{ price: Obj; current_period_start: number; current_period_end: number }> }).data;
    const lines = items
      .filter((i) => (i.price.recurring as { usage_type?: string } | undefined)?.usage_type !== 'metered')
      .map((i) => ({
        object: 'line_item',
        description: `1 × ${String(i.price.nickname ?? i.price.id)}`,
        amount: Number(i.price.unit_amount ?? 0),
        quantity: 1,
      }));
    if (opts.usageMinor) lines.push({ object: 'line_item', description: 'Metered usage', amount: opts.usageMinor, quantity: 1 });
    const invoice = this.store(
      'in',
      'invoice',
      {
        customer: sub.customer,
        number: `TGSI-${String(++this.invoiceSeq).padStart(4, '0')}`,
        status: 'draft',
        currency: String(items[0]?.price.currency ?? 'usd'),
        period_start: items[0]?.current_period_start ?? now(),
        period_end: items[0]?.current_period_end ?? now(),
        total: lines.reduce((a, l) => a + l.amount, 0),
        lines: { object: 'list', data: lines },
        parent: { type: 'subscription_details', subscription_details: { subscription: sub.id, metadata: sub.metadata ?? {} } },
        hosted_invoice_url: null,
      },
      account,
    );
    invoice.hosted_invoice_url = `https://invoice.stripe.test/i/${invoice.id}`;
    const event = (type: string, object: unknown) => ({
      id: newObjId('evt'),
      object: 'event',
      api_version: '2026-10-28.endive',
      created: now(),
      livemode: false,
      pending_webhooks: 1,
      type,
      data: { object },
      ...(account ? { account } : {}),
    });
    Object.assign(invoice, { status: 'open' });
    const finalized = event('invoice.finalized', JSON.parse(JSON.stringify(invoice)));
    Object.assign(invoice, { status: 'paid' });
    const paid = event('invoice.paid', JSON.parse(JSON.stringify(invoice)));
    return { invoice, events: [finalized, paid] };
  }

  private get(id: string, account: string | null): Obj | undefined {
    return this.objects.get(`${account ?? ''}|${id}`);
  }

  private route(
    method: string,
    path: string,
    b: Record<string, unknown>,
    q: Record<string, string>,
    account: string | null,
  ): { status: number; body: unknown; headers?: Record<string, string> } {
    const missing = (param: string) => ({
      status: 400,
      body: { error: { type: 'invalid_request_error', code: 'parameter_missing', message: `Missing required param: ${param}.`, param } },
    });
    const notFound = (id: string) => ({
      status: 404,
      body: { error: { type: 'invalid_request_error', code: 'resource_missing', message: `No such object: '${id}'` } },
    });
    const ok = (body: unknown) => ({ status: 200, body });
    let m: RegExpMatchArray | null;

    if (method === 'POST' && path === '/v1/billing/meter_events') {
      if (typeof b.event_name !== 'string') return missing('event_name');
      const payload = (b.payload ?? {}) as Record<string, string>;
      if (!payload.stripe_customer_id) return missing('payload[stripe_customer_id]');
      if (payload.value === undefined || !/^\d+$/.test(payload.value)) return missing('payload[value]');
      const identifier = typeof b.identifier === 'string' ? b.identifier : newObjId('mev');
      if (identifier.length > 100)
        return { status: 400, body: { error: { type: 'invalid_request_error', message: 'identifier is too long', param: 'identifier' } } };
      if (this.meterEvents.some((e) => e.identifier === identifier && e.account === account)) {
        return {
          status: 400,
          body: { error: { type: 'invalid_request_error', message: `An event already exists with identifier ${identifier}.` } },
          headers: { 'stripe-should-retry': 'false' },
        };
      }
      const timestamp = b.timestamp ? Number(b.timestamp) : now();
      if (timestamp < now() - 35 * 86_400 || timestamp > now() + 300) {
        return {
          status: 400,
          body: {
            error: {
              type: 'invalid_request_error',
              message: 'Timestamp must be within the past 35 days and not more than 5 minutes in the future.',
              param: 'timestamp',
            },
          },
        };
      }
      this.meterEvents.push({
        identifier,
        event_name: b.event_name,
        customer: payload.stripe_customer_id,
        value: Number(payload.value),
        timestamp,
        account,
      });
      return ok({
        object: 'billing.meter_event',
        created: now(),
        event_name: b.event_name,
        identifier,
        livemode: false,
        payload,
        timestamp,
      });
    }
    if (method === 'POST' && path === '/v1/customers') {
      return ok(this.store('cus', 'customer', { email: b.email ?? null, name: b.name ?? null, metadata: b.metadata ?? {} }, account));
    }
    if (method === 'POST' && path === '/v1/products') {
      if (typeof b.name !== 'string') return missing('name');
      return ok(this.store('prod', 'product', { name: b.name, active: true, metadata: b.metadata ?? {} }, account));
    }
    if (method === 'POST' && path === '/v1/billing/meters') {
      if (typeof b.event_name !== 'string') return missing('event_name');
      if (typeof b.display_name !== 'string') return missing('display_name');
      return ok(
        this.store(
          'mtr',
          'billing.meter',
          {
            display_name: b.display_name,
            event_name: b.event_name,
            status: 'active',
            default_aggregation: b.default_aggregation ?? { formula: 'sum' },
            customer_mapping: b.customer_mapping ?? { event_payload_key: 'stripe_customer_id', type: 'by_id' },
            value_settings: b.value_settings ?? { event_payload_key: 'value' },
            event_time_window: null,
          },
          account,
        ),
      );
    }
    if (method === 'POST' && path === '/v1/prices') {
      if (typeof b.currency !== 'string') return missing('currency');
      if (typeof b.product !== 'string') return missing('product');
      if (!this.get(b.product, account)) return notFound(b.product);
      return ok(
        this.store(
          'price',
          'price',
          {
            active: true,
            currency: b.currency,
            product: b.product,
            unit_amount: b.unit_amount !== undefined ? Number(b.unit_amount) : null,
            billing_scheme: b.billing_scheme ?? 'per_unit',
            tiers_mode: b.tiers_mode ?? null,
            tiers: b.tiers ?? null,
            transform_quantity: b.transform_quantity ?? null,
            recurring: b.recurring ?? null,
            type: b.recurring ? 'recurring' : 'one_time',
            metadata: b.metadata ?? {},
          },
          account,
        ),
      );
    }
    if (method === 'POST' && path === '/v1/checkout/sessions') {
      if (b.mode !== 'subscription' && b.mode !== 'payment' && b.mode !== 'setup') return missing('mode');
      if (!Array.isArray(b.line_items) || b.line_items.length === 0) return missing('line_items');
      const s = this.store(
        'cs_test',
        'checkout.session',
        {
          mode: b.mode,
          customer: b.customer ?? null,
          client_reference_id: b.client_reference_id ?? null,
          line_items: b.line_items,
          metadata: b.metadata ?? {},
          subscription_data: b.subscription_data ?? null,
          success_url: b.success_url ?? null,
          cancel_url: b.cancel_url ?? null,
          status: 'open',
          payment_status: 'unpaid',
          subscription: null,
        },
        account,
      );
      s.url = `https://checkout.stripe.com/c/pay/${s.id}`;
      return ok(s);
    }
    if (method === 'POST' && path === '/v1/subscriptions') {
      if (typeof b.customer !== 'string') return missing('customer');
      if (!Array.isArray(b.items) || b.items.length === 0) return missing('items');
      const sub = this.createSubscription(
        b.customer,
        (b.items as Array<{ price: string }>).map((i) => i.price),
        (b.metadata ?? {}) as Record<string, string>,
        account,
      );
      return ok(sub);
    }
    if (method === 'POST' && (m = path.match(/^\/v1\/subscriptions\/([^/]+)$/))) {
      const sub = this.get(m[1]!, account);
      if (!sub) return notFound(m[1]!);
      if (b.cancel_at_period_end !== undefined) sub.cancel_at_period_end = b.cancel_at_period_end === 'true';
      if (b.metadata) sub.metadata = { ...(sub.metadata as object), ...(b.metadata as object) };
      if (Array.isArray(b.items)) {
        const items = sub.items as { data: Array<Record<string, unknown>> };
        for (const change of b.items as Array<{ id?: string; deleted?: string; price?: string }>) {
          if (change.id && change.deleted === 'true') items.data = items.data.filter((i) => i.id !== change.id);
          else if (change.price) items.data.push(this.subscriptionItem(sub.id, change.price, account));
        }
      }
      sub.proration_behavior_last = b.proration_behavior ?? null;
      return ok(sub);
    }
    if (method === 'DELETE' && (m = path.match(/^\/v1\/subscriptions\/([^/]+)$/))) {
      const sub = this.get(m[1]!, account);
      if (!sub) return notFound(m[1]!);
      sub.status = 'canceled';
      sub.canceled_at = now();
      return ok(sub);
    }
    if (
      method === 'GET' &&
      (m = path.match(/^\/v1\/(customers|products|prices|billing\/meters|checkout\/sessions|subscriptions)\/([^/]+)$/))
    ) {
      const o = this.get(m[2]!, account);
      return o ? ok(o) : notFound(m[2]!);
    }
    if (method === 'GET' && path === '/v1/billing/meters') {
      const data = [...this.objects.entries()]
        .filter(([k, o]) => k.startsWith(`${account ?? ''}|`) && o.object === 'billing.meter')
        .map(([, o]) => o);
      return ok({ object: 'list', data, has_more: false, url: '/v1/billing/meters' });
    }
    if (method === 'GET' && (m = path.match(/^\/v1\/billing\/meters\/([^/]+)\/event_summaries$/))) {
      const meter = this.get(m[1]!, account);
      if (!meter) return notFound(m[1]!);
      if (!q.customer) return missing('customer');
      const from = Number(q.start_time ?? 0);
      const to = Number(q.end_time ?? Number.MAX_SAFE_INTEGER);
      const value = this.meterEvents
        .filter(
          (e) =>
            e.account === account &&
            e.event_name === meter.event_name &&
            e.customer === q.customer &&
            e.timestamp >= from &&
            e.timestamp < to,
        )
        .reduce((a, e) => a + e.value, 0);
      return ok({
        object: 'list',
        data: [
          {
            id: newObjId('mtrusg'),
            object: 'billing.meter_event_summary',
            aggregated_value: value,
            start_time: from,
            end_time: to,
            livemode: false,
            meter: meter.id,
          },
        ],
        has_more: false,
        url: path,
      });
    }
    return { status: 404, body: { error: { type: 'invalid_request_error', message: `Unrecognized request URL (${method}: ${path}).` } } };
  }
}

export async function startStripeStandIn(apiKey?: string): Promise<StripeStandIn> {
  return new StripeStandIn(apiKey).start();
}
