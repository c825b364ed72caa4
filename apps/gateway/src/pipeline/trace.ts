import type { Attributes, Context, Link, Span, SpanKind, Tracer } from '@opentelemetry/api';
import { formatTraceparent, parseTraceparent, parseTracestate, type Tracing } from '@tollgate/telemetry';
import { authenticateJwt, authenticateKey } from './authenticate';
import { authorizeKey } from './authorize';
import { cacheLookup } from './cache';
import { NEXT, type Done, type RequestContext, type Stage, type Step } from './context';
import { forward } from './forward';
import { clientAddress, limit } from './limit';
import { respond } from './respond';
import { buildUpstreamHeaders } from './upstream-headers';

/**
 * OpenTelemetry on the request path (ADR 0027). Only reached when tracing is configured: the
 * gateway's `tracing` is null otherwise, `run.ts` checks it once per request, and nothing here
 * runs, allocates or is loaded (the SDK itself comes in through `import()` in server.ts).
 *
 * Per request: one server span, started before the framing checks. Sampled requests get a
 * child span per stage that does work (auth, authorize, limit, cache, upstream); an unsampled
 * one gets none, so at a 1% ratio 99 requests in 100 cost one non-recording span and one header.
 * The upstream always receives the gateway's own `traceparent` (a client's is never passed on
 * as is): the upstream span's id when sampled, the server span's when not.
 */
export type GatewayTracer = {
  tracing: Tracing;
  tracer: Tracer;
  /** Whose incoming traceparent becomes the parent: `trusted` = peers in GATEWAY_TRUSTED_PROXIES. */
  parentFrom: 'trusted' | 'any';
  /** Span options of the `upstream` span, made once. */
  clientSpan: { kind: SpanKind };
};

export function createGatewayTracer(tracing: Tracing, parentFrom: 'trusted' | 'any'): GatewayTracer {
  return { tracing, tracer: tracing.tracer, parentFrom, clientSpan: { kind: tracing.api.SpanKind.CLIENT } };
}

/**
 * One request's trace: its server span, and the context its stage spans hang from when sampled.
 * The meter ends it through these methods, so meter.ts needs no import from here.
 */
export class RequestTrace {
  constructor(
    readonly span: Span,
    /** Parent context of stage spans; null when the request is not sampled (no stage spans). */
    readonly parent: Context | null,
  ) {}

  /** The sampled request's traceparent, for its usage event (the worker links its batch span to it). */
  usageTraceparent(): string {
    const sc = this.span.spanContext();
    return formatTraceparent(sc.traceId, sc.spanId, sc.traceFlags);
  }

  /** Ends the server span once the response is over (from the meter): status, route and who answered. */
  end(ctx: RequestContext, status: number): void {
    ctx.trace = null;
    const span = this.span;
    if (this.parent !== null) {
      const { semconv: c, api } = ctx.gw.tracing!.tracing;
      const attrs: Attributes = { [c.ATTR_HTTP_RESPONSE_STATUS_CODE]: status, 'tollgate.answered_by': ctx.answeredBy };
      const route = ctx.route;
      if (route !== null) {
        const path = `${ctx.api!.basePath === '/' ? '' : ctx.api!.basePath}${route.policy.path}`;
        attrs[c.ATTR_HTTP_ROUTE] = path;
        span.updateName(`${ctx.method} ${path}`);
      }
      if (ctx.tenant !== null) attrs['tollgate.tenant.id'] = ctx.tenant.tenantId;
      if (ctx.api !== null) attrs['tollgate.api.id'] = ctx.api.id;
      const rec = ctx.identity?.record;
      if (rec) attrs['tollgate.key.id'] = rec.keyId;
      if (ctx.rejected !== null) attrs['tollgate.rejected'] = ctx.rejected;
      span.setAttributes(attrs);
      if (status >= 500) span.setStatus({ code: api.SpanStatusCode.ERROR });
    }
    span.end();
  }
}

/** Stage → span name; a stage not listed gets its function's name, one listed as null no span. */
const STAGE_SPANS = new Map<Stage, string | null>([
  [authenticateKey, 'auth'],
  [authenticateJwt, 'auth'],
  [authorizeKey, 'authorize'],
  [limit, 'limit'],
  [cacheLookup, 'cache'],
  [forward, 'upstream'],
  // Bookkeeping, not work worth a span: the upstream span covers the wait, the server span the relay.
  [buildUpstreamHeaders, null],
  [respond, null],
]);

/**
 * Starts the request's server span. A valid incoming traceparent is its parent when the peer
 * may set one (ADR 0027); from anyone else the gateway starts a trace of its own and records
 * theirs as a link, so a client can neither choose the recorded trace id nor force sampling.
 * Malformed, overlong, version-ff or all-zero values are ignored as if absent.
 */
export function startTrace(ctx: RequestContext, t: GatewayTracer): void {
  const { api } = t.tracing;
  const headers = ctx.headers;
  let parent = api.ROOT_CONTEXT;
  let links: Link[] | undefined;
  const incoming = headers.traceparent;
  if (incoming !== undefined) {
    const remote = parseTraceparent(incoming);
    if (remote !== null) {
      if (t.parentFrom === 'any' || ctx.gw.isTrusted(ctx.req.socket.remoteAddress)) {
        parent = t.tracing.remoteContext(remote, parseTracestate(headers.tracestate));
      } else {
        links = [{ context: t.tracing.remoteSpanContext(remote), attributes: { 'tollgate.link': 'client traceparent (untrusted peer)' } }];
      }
    }
  }
  const span = t.tracer.startSpan(ctx.method, { kind: api.SpanKind.SERVER, links }, parent);
  if (!span.isRecording()) {
    ctx.trace = new RequestTrace(span, null);
    return;
  }
  const c = t.tracing.semconv;
  span.setAttributes({
    [c.ATTR_HTTP_REQUEST_METHOD]: ctx.method,
    [c.ATTR_URL_PATH]: (ctx.req.url ?? '').split('?', 1)[0]!.slice(0, 512),
    [c.ATTR_URL_SCHEME]: ctx.gw.proto,
    [c.ATTR_SERVER_ADDRESS]: (headers.host ?? '').slice(0, 255),
    [c.ATTR_CLIENT_ADDRESS]: clientAddress(ctx.req.socket.remoteAddress, headers['x-forwarded-for'], ctx.gw.isTrusted),
    'tollgate.request.id': ctx.request.id,
  });
  ctx.trace = new RequestTrace(span, api.trace.setSpan(api.ROOT_CONTEXT, span));
}

/** The route's stages with a span around each that does work, and the gateway's traceparent for the upstream. */
export async function runTracedStages(ctx: RequestContext, stages: readonly Stage[], trace: RequestTrace): Promise<Done> {
  const { tracer, tracing, clientSpan } = ctx.gw.tracing!;
  for (let i = 0; i < stages.length; i++) {
    const stage = stages[i]!;
    const name = trace.parent === null ? null : (STAGE_SPANS.get(stage) ?? (STAGE_SPANS.has(stage) ? null : stage.name));
    if (name === null) {
      if (stage === forward) propagate(ctx, trace.span);
      let step = stage(ctx);
      if (step instanceof Promise) step = await step;
      if (step !== NEXT) return step;
      continue;
    }
    const span = tracer.startSpan(name, stage === forward ? clientSpan : undefined, trace.parent!);
    if (stage === forward) propagate(ctx, span);
    let step: Step | Promise<Step>;
    try {
      step = stage(ctx);
      if (step instanceof Promise) step = await step;
    } catch (err) {
      span.setStatus({ code: tracing.api.SpanStatusCode.ERROR, message: (err as Error).message });
      span.end();
      throw err;
    }
    endStageSpan(ctx, span, stage, step);
    if (step !== NEXT) return step;
  }
  return undefined;
}

function endStageSpan(ctx: RequestContext, span: Span, stage: Stage, step: Step): void {
  if (stage === forward) {
    const { semconv, api } = ctx.gw.tracing!.tracing;
    const status = ctx.exchange?.statusCode ?? ctx.reply.statusCode;
    span.setAttribute(semconv.ATTR_HTTP_RESPONSE_STATUS_CODE, status);
    if (ctx.exchange === null || status >= 500) span.setStatus({ code: api.SpanStatusCode.ERROR });
  } else if (step !== NEXT && ctx.rejected !== null) {
    // The stage answered the request itself: say why (never the key or token).
    span.setAttribute('tollgate.rejected', ctx.rejected);
  }
  if (stage === cacheLookup) span.setAttribute('tollgate.cache.hit', ctx.cacheHit);
  span.end();
}

/**
 * The upstream's trace context is the gateway's: any traceparent/tracestate the client sent (or
 * a transform set) is replaced, and tracestate travels on only as the trace's own.
 */
function propagate(ctx: RequestContext, span: Span): void {
  const sc = span.spanContext();
  const list = ctx.upstreamHeaders!;
  for (let i = list.length - 2; i >= 0; i -= 2) {
    const name = list[i]!;
    if (name === 'traceparent' || name === 'tracestate') list.splice(i, 2);
  }
  list.push('traceparent', formatTraceparent(sc.traceId, sc.spanId, sc.traceFlags));
  const state = sc.traceState?.serialize();
  if (state) list.push('tracestate', state);
}
