import { describe, expect, it } from 'vitest';
import type { ApiPolicy, RoutePolicy } from '@tollgate/policy';
import { authenticateJwt, authenticateKey } from './authenticate';
import { authorizeKey } from './authorize';
import { cacheLookup } from './cache';
import { compileStages } from './compile';
import { forward } from './forward';
import { limit } from './limit';
import { respond } from './respond';
import { buildUpstreamHeaders } from './upstream-headers';
import { circuitGate } from './circuit';
import { corsHeaders } from './cors';
import { checkApiIpRules } from './ip-rules';
import { requireScopes } from './scopes';
import { sharedLimit } from './shared-limit';

const route = (over: Partial<RoutePolicy> = {}): RoutePolicy => ({
  id: 'rte',
  methods: [],
  path: '/*',
  timeoutMs: null,
  cacheTtlSeconds: 0,
  transform: null,
  rateLimit: null,
  ...over,
});
const api = (authMode: ApiPolicy['authMode']): ApiPolicy => ({
  id: 'api',
  slug: 'api',
  name: 'api',
  basePath: '/',
  version: 'v1',
  authMode,
  allowQueryKey: false,
  failMode: 'open',
  loadBalancing: 'round_robin',
  timeouts: { connectMs: 100, headersMs: 100, requestMs: 100 },
  retries: 0,
  jwt: null,
  targets: [{ id: 't', url: 'http://127.0.0.1:1/', weight: 1, healthCheck: null }],
  routes: [],
});
const rate = { limit: 10, windowSeconds: 60, algorithm: 'fixed_window' } as const;

describe('compileStages', () => {
  it('gives a keyed route authentication, authorisation and limits, whatever the route says (a plan may limit)', () => {
    expect(compileStages(api('api_key'), route())).toEqual([authenticateKey, authorizeKey, limit, buildUpstreamHeaders, forward, respond]);
  });

  it('leaves limits off an open or JWT route without a route limit, and on when it has one', () => {
    expect(compileStages(api('none'), route())).toEqual([buildUpstreamHeaders, forward, respond]);
    expect(compileStages(api('none'), route({ rateLimit: rate }))).toEqual([limit, buildUpstreamHeaders, forward, respond]);
    expect(compileStages(api('jwt'), route())).toEqual([authenticateJwt, buildUpstreamHeaders, forward, respond]);
    expect(compileStages(api('jwt'), route({ rateLimit: rate }))).toEqual([authenticateJwt, limit, buildUpstreamHeaders, forward, respond]);
  });

  it('looks in the response cache only on routes that cache, after the upstream headers it is keyed on', () => {
    expect(compileStages(api('none'), route({ cacheTtlSeconds: 30 }))).toEqual([buildUpstreamHeaders, cacheLookup, forward, respond]);
    expect(compileStages(api('api_key'), route({ cacheTtlSeconds: 30 }))).toEqual([
      authenticateKey,
      authorizeKey,
      limit,
      buildUpstreamHeaders,
      cacheLookup,
      forward,
      respond,
    ]);
  });

  it('adds each edge policy only where it is configured, in its place on the path (ADR 0025)', () => {
    const edge: ApiPolicy = {
      ...api('api_key'),
      cors: { origins: ['*'], methods: [], headers: [], exposedHeaders: [], credentials: false, maxAgeSeconds: 0 },
      ipRules: { allow: [], deny: ['10.0.0.0/8'] },
      perIpRateLimit: rate,
      circuitBreaker: { failureRatio: 0.5, minRequests: 10, windowSeconds: 10, openSeconds: 5, halfOpenProbes: 1 },
    };
    expect(compileStages(edge, route({ requiredScopes: ['a'] }))).toEqual([
      corsHeaders,
      checkApiIpRules,
      authenticateKey,
      authorizeKey,
      requireScopes,
      sharedLimit,
      limit,
      buildUpstreamHeaders,
      circuitGate,
      forward,
      respond,
    ]);
    // Null, empty lists and empty scopes are off.
    const off: ApiPolicy = { ...api('api_key'), cors: null, ipRules: { allow: [], deny: [] }, perIpRateLimit: null, circuitBreaker: null };
    expect(compileStages(off, route({ requiredScopes: [], sharedRateLimit: null }))).toEqual(compileStages(api('api_key'), route()));
    expect(compileStages(api('none'), route({ sharedRateLimit: rate }))).toEqual([sharedLimit, buildUpstreamHeaders, forward, respond]);
  });
});
