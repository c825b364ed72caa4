import { claimHeaderValue } from '../auth/jwt';
import { normalizeIp } from '../env';
import { buildForwardHeaders, forwardedFor } from '../proxy/headers';
import { NEXT, type RequestContext, type Step } from './context';
import { leftEarly } from './reply';

/**
 * The headers the upstream will see, once the caller is admitted: the client's, less hop-by-hop,
 * `x-tollgate-*`, forwarding and credential headers, then the route's request transform (which
 * may not set `x-tollgate-*`), then the gateway's own: X-Forwarded-* from the socket (a client's
 * chain only from trusted proxies) and the caller's identity.
 */
export function buildUpstreamHeaders(ctx: RequestContext): Step {
  // A client that left while its call waited on Redis: nothing to forward it for.
  if (ctx.reply.raw.destroyed) return leftEarly(ctx);

  const { gw, req, headers } = ctx;
  const transform = ctx.route!.policy.transform;
  const fwdHeaders = buildForwardHeaders(req, {
    requestId: ctx.request.id,
    credentialHeader: ctx.credentialHeader,
    remove: transform?.requestHeaders?.remove?.map((h) => h.toLowerCase()) ?? null,
  });
  const reqSet = transform?.requestHeaders?.set;
  if (reqSet)
    for (const name in reqSet) if (!name.toLowerCase().startsWith('x-tollgate-')) fwdHeaders.push(name.toLowerCase(), reqSet[name]!);
  const peer = req.socket.remoteAddress;
  const peerTrusted = gw.isTrusted(peer);
  fwdHeaders.push(
    'x-forwarded-for',
    forwardedFor(headers['x-forwarded-for'], normalizeIp(peer ?? ''), peerTrusted),
    'x-forwarded-proto',
    peerTrusted && typeof headers['x-forwarded-proto'] === 'string' ? headers['x-forwarded-proto'] : gw.proto,
    'x-forwarded-host',
    peerTrusted && typeof headers['x-forwarded-host'] === 'string' ? headers['x-forwarded-host'] : (headers.host ?? ''),
    'x-tollgate-tenant',
    ctx.tenant!.tenantId,
    'x-tollgate-request-id',
    ctx.request.id,
  );
  const identity = ctx.identity;
  if (identity) {
    const rec = identity.record;
    fwdHeaders.push('x-tollgate-consumer', rec.consumerId, 'x-tollgate-key-id', rec.keyId);
    if (rec.planId) fwdHeaders.push('x-tollgate-plan', identity.plan?.slug ?? rec.planId);
  } else if (ctx.consumerId) {
    const v = claimHeaderValue(ctx.consumerId);
    if (v) fwdHeaders.push('x-tollgate-consumer', v);
  }
  const claimHeaders = ctx.claimHeaders;
  if (claimHeaders) for (let i = 0; i < claimHeaders.length; i++) fwdHeaders.push(claimHeaders[i]!);
  ctx.upstreamHeaders = fwdHeaders;
  return NEXT;
}
