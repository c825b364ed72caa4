import { canonicalizeTarget } from '../routing/canonical-path';
import { matchRoute, normalizeHost } from '../routing/route-table';
import { NEXT, type RequestContext, type Step } from './context';
import { answer } from './reply';
import { answerPreflight, isPreflight } from './cors';

/**
 * Canonical path, host → tenant, path → API and route. From here on the context has its tenant,
 * API and route, and the route's compiled stage list decides what runs next.
 */
export function resolveRoute(ctx: RequestContext): Step {
  const target = canonicalizeTarget(ctx.req.url ?? '');
  if (!target.ok) return answer(ctx, 'invalid_path', `invalid request path: ${target.reason}`);

  const { store } = ctx.gw;
  if (!store.loaded) return answer(ctx, 'unavailable', 'the gateway is starting; configuration not loaded yet');
  // A Host that isn't host[:port] (`a@b`, a path) is a malformed request, not an unknown host.
  const host = normalizeHost(ctx.headers.host);
  if (host === null) return answer(ctx, 'bad_request', 'missing or malformed Host header');
  const tenant = store.table.byHost.get(host);
  if (!tenant) return answer(ctx, 'not_found', 'unknown host');
  ctx.tenant = tenant;

  const method = ctx.method;
  const match = matchRoute(tenant, method, target.path);
  if (match.kind === 'no_api') return answer(ctx, 'not_found', 'no API at this path');
  // A CORS preflight is answered here, whatever the route's methods, before any stage asks for a key.
  if (method === 'OPTIONS' && match.api.cors !== null && isPreflight(ctx)) return answerPreflight(ctx, tenant, match.api, target.path);
  ctx.api = match.api;
  if (match.kind === 'no_route') {
    ctx.rejected = 'invalid';
    return answer(ctx, 'not_found', 'no route matches this path');
  }
  if (match.kind === 'method_not_allowed') {
    ctx.rejected = 'invalid';
    return answer(ctx, 'method_not_allowed', `method ${method} is not allowed here`, { allow: match.allow.join(', ') });
  }
  ctx.route = match.route;
  ctx.rest = match.rest;
  ctx.query = target.query;
  return NEXT;
}
