import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { RejectReason } from '@tollgate/usage';
import type { GatewayMetrics } from '../admin/metrics';
import type { ExtractedKey, Identity } from '../auth/authenticate';
import type { KeyCache, KeyLookup } from '../auth/key-cache';
import type { CacheState } from '../cache/cache-flow';
import type { ResponseCache } from '../cache/response-cache';
import type { GatewayConfig } from '../env';
import type { ColdPath } from '../limits/cold-path';
import type { LimitEnforcer, LimitSubjectInput, LimitVerdict } from '../limits/enforce-limits';
import type { FairShare } from '../limits/fair-share';
import type { UpstreamExchange } from '../proxy/forward';
import type { Upstreams } from '../proxy/upstreams';
import type { CompiledApi, CompiledRoute, RouteTable, TenantRuntime } from '../routing/route-table';
import type { FailureBudget } from '../auth/failure-budget';
import type { UsageSink } from '../usage/usage-sink';
import type { WsConnections } from '../websocket/connections';
import type { GatewayTracer, RequestTrace } from './trace';

/**
 * What every stage may use: one per app (`buildApp`), shared by all its requests. Stages are
 * module functions, not closures, so the route compiler can pick them without an app at hand.
 */
export type Gateway = {
  config: GatewayConfig;
  store: { readonly table: RouteTable; readonly loaded: boolean };
  keys: KeyCache;
  upstreams: Upstreams;
  limits: LimitEnforcer;
  usage: UsageSink;
  metrics: GatewayMetrics;
  logger: Logger;
  /** Response cache for routes with `cacheTtlSeconds > 0`; null = no caching. */
  cache: ResponseCache | null;
  /** A cold key's lookup and limit decision in one round trip (ADR 0020); null = lookup, then decide. */
  cold: ColdPath | null;
  /** Fair admission between tenants when saturated (ADR 0020); null = none. */
  fair: FairShare | null;
  isTrusted: (ip: string | undefined) => boolean;
  /** The scheme clients reached this listener with, for `X-Forwarded-Proto`. */
  proto: 'http' | 'https';
  /** Well-formed key → its SHA-256, so a key seen before skips the checksum and the hash. */
  keyHashes: Map<string, string>;
  /** Failed-authentication budget per client (auth/failure-budget.ts). */
  authFailures: FailureBudget;
  /** Open WebSocket connections of this process (ADR 0026); null = WebSockets off. */
  websockets: WsConnections | null;
  /** Set when the process drains (SIGTERM): responses then end their connection (`Connection: close`). */
  lifecycle: { draining: boolean };
  /** OpenTelemetry (ADR 0027); null = tracing off, and the request path never looks further. */
  tracing: GatewayTracer | null;
};

/** A stage's "carry on with the next stage"; anything else ends the pipeline and is the handler's result. */
export const NEXT: unique symbol = Symbol('next stage');
export type Next = typeof NEXT;
/** What the route handler returns to Fastify once the response is written or taken over. */
export type Done = FastifyReply | undefined;
export type Step = Next | Done;

/**
 * One step of the request path: a small function over the request context. Synchronous unless it
 * has to wait (a key cache miss, a limit decision from Redis, the upstream), so a request whose
 * key is cached and whose limit is decided locally reaches the upstream without a promise.
 */
export type Stage = (ctx: RequestContext) => Step | Promise<Step>;

/**
 * Everything one request learns on its way through the stages, and what the meter reads when its
 * response is over (`request.tg`). Every field is set here, so all contexts share one shape.
 */
export class RequestContext {
  readonly start = performance.now();
  readonly req: IncomingMessage;
  readonly headers: IncomingHttpHeaders;
  readonly method: string;
  /** The request's server span (tracing on only; ended by the meter). */
  trace: RequestTrace | null = null;

  // framing
  /** Declared Content-Length (0 when absent). */
  declared = 0;

  // resolve
  tenant: TenantRuntime | null = null;
  /** Counted in its tenant's fair share (admit.ts) until the meter releases it. */
  admitted = false;
  api: CompiledApi | null = null;
  route: CompiledRoute | null = null;
  /** Canonical path below the API's base path (starts with '/'). */
  rest = '';
  /** The query as it will be forwarded (a query-string key is removed once accepted). */
  query = '';
  /** The client's address, once a stage needed it (`ip-rules.ts` clientIp). */
  clientIp: string | null = null;
  /** CORS headers every response to this request carries (`cors.ts`), null on APIs without CORS. */
  corsHeaders: string[] | null = null;

  // authenticate / authorize
  /** The key presented and where (api_key APIs), its hash and what the key cache said. */
  key: ExtractedKey = null;
  keyHash = '';
  keyLookup: KeyLookup | null = null;
  identity: Identity | null = null;
  /** JWT `sub` (JWT APIs): the consumer the usage event and the upstream are told about. */
  consumerId: string | null = null;
  /** Who limits count against; the client address when no stage set one. */
  subject: LimitSubjectInput | null = null;
  /** The header that carried the key, dropped on the way upstream. */
  credentialHeader: string | null = null;
  /** `x-tollgate-claim-*` name/value pairs for the upstream (JWT APIs). */
  claimHeaders: string[] | null = null;
  /** A JWT's scopes, read only for routes that require some (`scopes.ts`). */
  tokenScopes: readonly string[] | null = null;

  // limit
  /** The decision a cold key's one round trip already made (ADR 0020): the limit stage uses it. */
  coldVerdict: LimitVerdict | null = null;
  limitHeaders: Record<string, string> | null = null;

  // upstream request, cache, forward
  /** undici's flat `[name, value, …]` list for the upstream, built once the caller is admitted. */
  upstreamHeaders: string[] | null = null;
  cached: CacheState | null = null;
  /** The upstream's answer between forward and respond (cleared by respond). */
  exchange: UpstreamExchange | null = null;

  // metered (read by meter())
  rejected: RejectReason | null = null;
  /**
   * Who produced the response (ADR 0017): `upstream` once an upstream answer (or a cached one)
   * is being relayed; everything the gateway answers itself — refusals, connect failures,
   * timeouts, an open circuit — stays `gateway` and is never billed.
   */
  answeredBy: 'upstream' | 'gateway' = 'gateway';
  upstreamMs: number | null = null;
  bytesIn = 0;
  bytesOut = 0;
  /** The upstream exchange of a body still streaming to the client: its byte count is read at the end. */
  upstream: UpstreamExchange | null = null;
  cacheHit = false;

  constructor(
    readonly gw: Gateway,
    readonly request: FastifyRequest,
    readonly reply: FastifyReply,
  ) {
    this.req = request.raw;
    this.headers = this.req.headers;
    this.method = this.req.method!;
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    tg: RequestContext | null;
  }
}
