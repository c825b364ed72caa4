import type { ApiPolicy, RoutePolicy } from '@tollgate/policy';
import { authenticateJwt, authenticateKey } from './authenticate';
import { authenticateIntrospection } from './authenticate-introspection';
import { authorizeKey } from './authorize';
import { cacheLookup } from './cache';
import { circuitGate } from './circuit';
import { corsHeaders } from './cors';
import { checkApiIpRules } from './ip-rules';
import { requireScopes } from './scopes';
import { sharedLimit } from './shared-limit';
import type { Stage } from './context';
import { forward } from './forward';
import { limit } from './limit';
import { respond } from './respond';
import { buildUpstreamHeaders } from './upstream-headers';

/**
 * The stages one route runs once it is resolved, chosen when the route is compiled (a snapshot
 * swap), so a stage a route doesn't need is not in its list and costs nothing per request.
 *
 * The whole request path, in order (ADR 0016):
 *   framing, resolve        every request, before a route is known (`run.ts`)
 *   cors                    APIs with CORS: the headers every answer carries (a preflight was
 *                           answered in `resolve`, before any stage: ADR 0025)
 *   ip rules                APIs with address rules: 403 before any authentication work
 *   authenticate            api_key: the key, looked up; jwt: the token, verified; none: no stage
 *                           introspection: the token, asked about (ADR 0028); jwt and introspection
 *                           with a consumer claim bind the caller to a key record (bind-subject.ts)
 *   authorize               api_key: key status, expiry, tenant, plan, allowed APIs; then the
 *                           plan's and key's address rules when they have some
 *   scopes                  routes with `requiredScopes`: 403 insufficient_scope
 *   shared limit            routes with a route-wide limit, APIs with a per-address limit
 *   limit                   unless nothing can limit the call: no key and no route limit
 *   upstream headers        always
 *   cache                   routes with `cacheTtlSeconds > 0`
 *   circuit                 APIs with a circuit breaker: 503 while every target's circuit is open
 *   forward, respond        always
 *   meter                   when the response is over (`meter.ts`, from the onResponse hook)
 */
export function compileStages(api: ApiPolicy, route: RoutePolicy): Stage[] {
  const stages: Stage[] = [];
  if (api.cors) stages.push(corsHeaders);
  if (api.ipRules && (api.ipRules.allow.length || api.ipRules.deny.length)) stages.push(checkApiIpRules);
  if (api.authMode === 'api_key') stages.push(authenticateKey, authorizeKey);
  else if (api.authMode === 'jwt') stages.push(authenticateJwt);
  else if (api.authMode === 'introspection') stages.push(authenticateIntrospection);
  // An open API has no caller whose scopes could be checked: its routes' scopes refuse everyone.
  if (route.requiredScopes?.length) stages.push(requireScopes);
  if (route.sharedRateLimit || api.perIpRateLimit) stages.push(sharedLimit);
  // A key's plan may carry a rate or a quota whatever the route says; without a key only the
  // route's own rate limit can apply, and with none the limiter would answer "skip".
  if (api.authMode === 'api_key' || boundToConsumers(api) || route.rateLimit) stages.push(limit);
  stages.push(buildUpstreamHeaders);
  if (route.cacheTtlSeconds > 0) stages.push(cacheLookup);
  if (api.circuitBreaker) stages.push(circuitGate);
  stages.push(forward, respond);
  return stages;
}

/** JWT/introspection APIs whose callers are bound to consumers carry plans, so they may be limited. */
function boundToConsumers(api: ApiPolicy): boolean {
  return (api.authMode === 'jwt' && !!api.jwt?.consumerClaim) || (api.authMode === 'introspection' && !!api.introspection?.consumerClaim);
}
