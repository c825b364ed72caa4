import { randomBytes } from 'node:crypto';

export type Obj = Record<string, unknown> & { id: string };

export type MeterEventRecord = {
  identifier: string;
  event_name: string;
  customer: string;
  value: number;
  timestamp: number;
  account: string | null;
};

export const now = () => Math.floor(Date.now() / 1000);
export const newObjId = (prefix: string) => `${prefix}_${randomBytes(12).toString('hex')}`;

/** A webhook event as Stripe would send it, for a test to sign and deliver. */
function stripeEvent(type: string, object: unknown, account: string | null, created = now()): Record<string, unknown> {
  return {
    id: newObjId('evt'),
    object: 'event',
    api_version: '2026-10-28.endive',
    created,
    livemode: false,
    pending_webhooks: 1,
    type,
    data: { object },
    ...(account ? { account } : {}),
  };
}

/**
 * What the stand-in holds (objects and meter events, per connected account) and what Stripe does
 * on its own (a checkout completes, an invoice closes). The HTTP side is `StripeStandIn`; the
 * endpoints are `routeStripeRequest`.
 */
export class StripeState {
  readonly meterEvents: MeterEventRecord[] = [];
  readonly objects = new Map<string, Obj>();

  /** Keeps a new object under the account (`null` = the platform). */
  store(prefix: string, object: string, fields: Record<string, unknown>, account: string | null): Obj {
    const o: Obj = { id: newObjId(prefix), object, created: now(), livemode: false, metadata: {}, ...fields };
    this.objects.set(`${account ?? ''}|${o.id}`, o);
    return o;
  }

  subscriptionItem(subscriptionId: string, priceId: string, account: string | null): Record<string, unknown> {
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

  createSubscription(customer: string, prices: string[], metadata: Record<string, string>, account: string | null): Obj {
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
    const t = now();
    return {
      subscription,
      events: [
        stripeEvent('checkout.session.completed', { ...session }, account, t),
        stripeEvent('customer.subscription.created', JSON.parse(JSON.stringify(subscription)), account, t),
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
    Object.assign(invoice, { status: 'open' });
    const finalized = stripeEvent('invoice.finalized', JSON.parse(JSON.stringify(invoice)), account);
    Object.assign(invoice, { status: 'paid' });
    const paid = stripeEvent('invoice.paid', JSON.parse(JSON.stringify(invoice)), account);
    return { invoice, events: [finalized, paid] };
  }

  get(id: string, account: string | null): Obj | undefined {
    return this.objects.get(`${account ?? ''}|${id}`);
  }
}
