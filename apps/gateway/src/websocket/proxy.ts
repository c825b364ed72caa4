import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { UsageEvent } from '@tollgate/usage';
import { authorizeRecord } from '../auth/authenticate';
import type { RequestContext, Step } from '../pipeline/context';
import { meter } from '../pipeline/meter';
import { answer } from '../pipeline/reply';
import { filterResponseHeaders } from '../proxy/headers';
import { fastUlid } from '../util/request-id';
import { WsRelay, type WsUsageDelta } from './relay';
import { upstreamHandshake } from './upstream-handshake';

/** The raw socket of an HTTP/1.1 `Upgrade: websocket` request, held until the pipeline admits it. */
export type PendingUpgrade = { socket: Socket; head: Buffer };

const pending = new WeakMap<IncomingMessage, PendingUpgrade>();

export function holdUpgrade(req: IncomingMessage, up: PendingUpgrade): void {
  pending.set(req, up);
}

export function isHeldUpgrade(req: IncomingMessage): boolean {
  return pending.has(req);
}

/** The held upgrade of a request, once (only requests from the upgrade listener have one). */
export function takeUpgrade(req: IncomingMessage): PendingUpgrade | undefined {
  const up = pending.get(req);
  if (up !== undefined) pending.delete(req);
  return up;
}

/**
 * The forward stage of a WebSocket handshake that every stage before it admitted (key,
 * authorisation, limits: the handshake is the call they counted). Here: the per-key
 * concurrent-connection limit, the upstream handshake, the 101 to the client, then the relay.
 * Refusals are ordinary error responses on the still-HTTP connection, so the client sees no upgrade.
 */
export async function proxyWebSocket(ctx: RequestContext, up: PendingUpgrade): Promise<Step> {
  const { gw } = ctx;
  const registry = gw.websockets!;
  const settings = gw.config.websocket;
  const api = ctx.api!;
  const tenant = ctx.tenant!;
  const keyHash = ctx.identity !== null ? ctx.keyHash : null;
  let relay: WsRelay | null = null;
  relay = new WsRelay({
    keyHash,
    // A changed key record is judged exactly as a new handshake would be.
    stillAllowed: (lookup) => authorizeRecord(lookup, ctx.keyHash, tenant, api, Date.now()).ok,
    maxFrameBytes: settings.maxFrameBytes,
    usageIntervalMs: settings.usageIntervalMs,
    onUsage: (delta) => gw.usage.add(connectionRecord(ctx, delta)),
    onClosed: () => registry.delete(relay!),
  });
  if (!registry.tryAdd(relay, settings.maxPerKey)) {
    ctx.rejected = 'rate';
    return answer(ctx, 'rate_limited', `this key already holds ${settings.maxPerKey} open WebSocket connections`, { 'retry-after': '1' });
  }
  const balancer = api.sandboxBalancer !== null && ctx.identity?.record.env === 'test' ? api.sandboxBalancer : api.balancer;
  const target = gw.upstreams.pick(balancer, null);
  if (target === null) {
    registry.delete(relay);
    return answer(ctx, 'unavailable', 'the API has no upstream target', { 'retry-after': '1' });
  }
  const timeouts = api.policy.timeouts;
  const upstreamStart = performance.now();
  const shook = await upstreamHandshake(target, {
    path: target.pathPrefix + (ctx.query === '' ? ctx.rest : `${ctx.rest}?${ctx.query}`),
    headers: ctx.upstreamHeaders!,
    connectTimeoutMs: timeouts.connectMs,
    headersTimeoutMs: timeouts.headersMs,
  });
  ctx.upstreamMs = performance.now() - upstreamStart;
  if (!shook.ok) {
    registry.delete(relay);
    if (shook.status === null) gw.upstreams.reportFailure(target);
    gw.metrics.upstreamErrors.inc({ kind: shook.code });
    return answer(ctx, shook.code, shook.message);
  }
  gw.upstreams.reportSuccess(target);
  const client = up.socket;
  if (client.destroyed) {
    shook.socket.destroy();
    registry.delete(relay);
    return answer(ctx, 'bad_request', 'the client left during the handshake');
  }
  // The 101 goes straight onto the socket: the response object stays unused, and the handshake is
  // metered here as the call (answered by the upstream) before the connection's own records.
  ctx.reply.hijack();
  const headers = filterResponseHeaders(shook.headers, null, ctx.limitHeaders !== null);
  const lines = ['HTTP/1.1 101 Switching Protocols', 'connection: Upgrade', 'upgrade: websocket'];
  for (let i = 0; i < headers.length; i += 2) lines.push(`${headers[i]}: ${headers[i + 1]}`);
  const limitHeaders = ctx.limitHeaders;
  if (limitHeaders) for (const name in limitHeaders) lines.push(`${name}: ${limitHeaders[name]}`);
  lines.push(`x-request-id: ${ctx.request.id}`, '', '');
  client.write(lines.join('\r\n'));
  ctx.answeredBy = 'upstream';
  meter(gw, ctx.request, 101, 0);
  relay.start(client, shook.socket, up.head, shook.rest);
  return undefined;
}

/** A connection's usage record (ADR 0026): what happened since its previous one; never a call. */
function connectionRecord(ctx: RequestContext, d: WsUsageDelta): UsageEvent {
  const rec = ctx.identity?.record ?? null;
  return {
    id: fastUlid(),
    ts: Date.now(),
    tenantId: ctx.tenant!.tenantId,
    apiId: ctx.api!.id,
    routeId: ctx.route?.id ?? null,
    keyId: rec?.keyId ?? null,
    consumerId: rec?.consumerId ?? ctx.consumerId,
    subscriptionId: rec?.subscriptionId ?? null,
    planId: rec?.planId ?? null,
    method: 'GET',
    status: 101,
    latencyMs: d.durationMs,
    upstreamLatencyMs: null,
    bytesIn: d.bytesIn,
    bytesOut: d.bytesOut,
    cacheHit: false,
    rejected: null,
    answeredBy: 'upstream',
    ...(rec?.env === 'test' ? { test: true } : {}),
    websocket: {
      connectionId: ctx.request.id,
      seq: d.seq,
      final: d.final,
      durationMs: d.durationMs,
      messagesIn: d.messagesIn,
      messagesOut: d.messagesOut,
      closeCode: d.closeCode,
    },
  };
}
