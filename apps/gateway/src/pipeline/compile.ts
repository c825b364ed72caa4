import type { ApiPolicy, RoutePolicy } from '@tollgate/policy';
import { authenticateJwt, authenticateKey } from './authenticate';
import { authorizeKey } from './authorize';
import { cacheLookup } from './cache';
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
 *   cors                    not yet (issue 19): a preflight answered here, before any key is asked for
 *   ip rules                not yet (issue 19): allow/deny lists, 403 before any authentication work
 *   authenticate            api_key: the key, looked up; jwt: the token, verified; none: no stage
 *                           (OAuth token introspection, issue 19, is one more auth mode here)
 *   authorize               api_key: key status, expiry, tenant, plan, allowed APIs (scopes go here)
 *   limit                   unless nothing can limit the call: no key and no route limit
 *   upstream headers        always
 *   cache                   routes with `cacheTtlSeconds > 0`
 *   forward, respond        always
 *   meter                   when the response is over (`meter.ts`, from the onResponse hook)
 */
export function compileStages(api: ApiPolicy, route: RoutePolicy): Stage[] {
  const stages: Stage[] = [];
  // cors: (issue 19) here.
  // ip rules: (issue 19) here.
  if (api.authMode === 'api_key') stages.push(authenticateKey, authorizeKey);
  else if (api.authMode === 'jwt') stages.push(authenticateJwt);
  // A key's plan may carry a rate or a quota whatever the route says; without a key only the
  // route's own rate limit can apply, and with none the limiter would answer "skip".
  if (api.authMode === 'api_key' || route.rateLimit) stages.push(limit);
  stages.push(buildUpstreamHeaders);
  if (route.cacheTtlSeconds > 0) stages.push(cacheLookup);
  stages.push(forward, respond);
  return stages;
}
