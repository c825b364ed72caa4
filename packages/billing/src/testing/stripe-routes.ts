import { newObjId, now, type StripeState } from './stripe-state';

export type StripeReply = { status: number; body: unknown; headers?: Record<string, string> };

/** The Stripe endpoints Tollgate calls, with Stripe's response shapes and error envelope. */
export function routeStripeRequest(
  state: StripeState,
  method: string,
  path: string,
  b: Record<string, unknown>,
  q: Record<string, string>,
  account: string | null,
): StripeReply {
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
    if (state.meterEvents.some((e) => e.identifier === identifier && e.account === account)) {
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
    state.meterEvents.push({
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
    return ok(state.store('cus', 'customer', { email: b.email ?? null, name: b.name ?? null, metadata: b.metadata ?? {} }, account));
  }
  if (method === 'POST' && path === '/v1/products') {
    if (typeof b.name !== 'string') return missing('name');
    return ok(state.store('prod', 'product', { name: b.name, active: true, metadata: b.metadata ?? {} }, account));
  }
  if (method === 'POST' && path === '/v1/billing/meters') {
    if (typeof b.event_name !== 'string') return missing('event_name');
    if (typeof b.display_name !== 'string') return missing('display_name');
    return ok(
      state.store(
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
    if (!state.get(b.product, account)) return notFound(b.product);
    return ok(
      state.store(
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
    const s = state.store(
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
    const sub = state.createSubscription(
      b.customer,
      (b.items as Array<{ price: string }>).map((i) => i.price),
      (b.metadata ?? {}) as Record<string, string>,
      account,
    );
    return ok(sub);
  }
  if (method === 'POST' && (m = path.match(/^\/v1\/subscriptions\/([^/]+)$/))) {
    const sub = state.get(m[1]!, account);
    if (!sub) return notFound(m[1]!);
    if (b.cancel_at_period_end !== undefined) sub.cancel_at_period_end = b.cancel_at_period_end === 'true';
    if (b.metadata) sub.metadata = { ...(sub.metadata as object), ...(b.metadata as object) };
    if (Array.isArray(b.items)) {
      const items = sub.items as { data: Array<Record<string, unknown>> };
      for (const change of b.items as Array<{ id?: string; deleted?: string; price?: string }>) {
        if (change.id && change.deleted === 'true') items.data = items.data.filter((i) => i.id !== change.id);
        else if (change.price) items.data.push(state.subscriptionItem(sub.id, change.price, account));
      }
    }
    sub.proration_behavior_last = b.proration_behavior ?? null;
    return ok(sub);
  }
  if (method === 'DELETE' && (m = path.match(/^\/v1\/subscriptions\/([^/]+)$/))) {
    const sub = state.get(m[1]!, account);
    if (!sub) return notFound(m[1]!);
    sub.status = 'canceled';
    sub.canceled_at = now();
    return ok(sub);
  }
  if (
    method === 'GET' &&
    (m = path.match(/^\/v1\/(customers|products|prices|billing\/meters|checkout\/sessions|subscriptions)\/([^/]+)$/))
  ) {
    const o = state.get(m[2]!, account);
    return o ? ok(o) : notFound(m[2]!);
  }
  if (method === 'GET' && path === '/v1/billing/meters') {
    const data = [...state.objects.entries()]
      .filter(([k, o]) => k.startsWith(`${account ?? ''}|`) && o.object === 'billing.meter')
      .map(([, o]) => o);
    return ok({ object: 'list', data, has_more: false, url: '/v1/billing/meters' });
  }
  if (method === 'GET' && (m = path.match(/^\/v1\/billing\/meters\/([^/]+)\/event_summaries$/))) {
    const meter = state.get(m[1]!, account);
    if (!meter) return notFound(m[1]!);
    if (!q.customer) return missing('customer');
    const from = Number(q.start_time ?? 0);
    const to = Number(q.end_time ?? Number.MAX_SAFE_INTEGER);
    const value = state.meterEvents
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
