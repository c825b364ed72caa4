import { Checkbox, Field, FieldError, Select, TextArea } from './forms';

// Form fields for the edge policies (ADR 0025). Empty = off; the services validate and name
// the field they refuse.

type Limit = { limit: number; windowSeconds: number; algorithm?: string } | null;
export type IpRulesValue = { allow?: string[]; deny?: string[] } | null;
export type EdgeDefaults = {
  cors?: unknown;
  ipRules?: unknown;
  perIpRateLimit?: unknown;
  circuitBreaker?: unknown;
};

const ALGORITHMS = [
  { value: 'sliding_window', label: 'Sliding window' },
  { value: 'gcra', label: 'GCRA (token bucket)' },
  { value: 'fixed_window', label: 'Fixed window' },
];

/** Allow and deny CIDR lists; `prefix` keeps field names apart when two sit in one page. */
export function IpRulesFields({ d, prefix = '' }: { d?: IpRulesValue; prefix?: string }) {
  return (
    <div className="grid gap-4 md:grid-cols-2">
      <TextArea
        name={`${prefix}ipAllow`}
        label="Allowed client addresses"
        rows={3}
        defaultValue={(d?.allow ?? []).join('\n')}
        hint="CIDRs or addresses, one per line (IPv4 or IPv6). Empty = any address."
      />
      <TextArea
        name={`${prefix}ipDeny`}
        label="Denied client addresses"
        rows={3}
        defaultValue={(d?.deny ?? []).join('\n')}
        hint="Refused with 403, even when also allowed."
      />
    </div>
  );
}

/** The required-scopes and route-wide limit fields of the route form. */
export function RouteEdgeFields({ d = {} }: { d?: { requiredScopes?: string[]; sharedRateLimit?: unknown } }) {
  const shared = (d.sharedRateLimit ?? null) as Limit;
  return (
    <div className="grid gap-4 md:grid-cols-3">
      <Field
        name="requiredScopes"
        label="Required scopes"
        defaultValue={(d.requiredScopes ?? []).join(' ')}
        hint="A key must hold all of them (space-separated)"
        maxLength={4000}
      />
      <Field
        name="sharedLimit"
        label="Route-wide limit"
        type="number"
        defaultValue={shared?.limit ?? null}
        hint="Shared by every caller: protects the upstream"
      />
      <Field name="sharedWindowSeconds" label="Window (s)" type="number" defaultValue={shared?.windowSeconds ?? 1} />
    </div>
  );
}

/** The API's edge policies: CORS, address rules, per-address limit, circuit breaker. */
export function EdgePolicyFields({ d = {} }: { d?: EdgeDefaults }) {
  const cors = (d.cors ?? null) as {
    origins: string[];
    methods: string[];
    headers: string[];
    exposedHeaders: string[];
    credentials: boolean;
    maxAgeSeconds: number;
  } | null;
  const perIp = (d.perIpRateLimit ?? null) as Limit;
  const cb = (d.circuitBreaker ?? null) as {
    failureRatio: number;
    minRequests: number;
    windowSeconds: number;
    openSeconds: number;
    halfOpenProbes: number;
  } | null;
  return (
    <>
      <fieldset className="rounded-md border border-slate-200 p-4">
        <legend className="px-1 text-sm font-medium text-slate-800">CORS</legend>
        <p className="mb-3 text-sm text-slate-600">
          Preflights are answered by the gateway without a key; they never reach your upstream and are not billed.
        </p>
        <Checkbox name="corsEnabled" label="Answer CORS for this API" defaultChecked={cors !== null} />
        <div className="mt-3 grid gap-4 md:grid-cols-2">
          <TextArea
            name="corsOrigins"
            label="Allowed origins"
            rows={3}
            defaultValue={(cors?.origins ?? []).join('\n')}
            hint="https://app.example.com, one per line; * alone for any origin (not with credentials)"
          />
          <TextArea
            name="corsHeaders"
            label="Allowed request headers"
            rows={3}
            defaultValue={(cors?.headers ?? []).join('\n')}
            hint="e.g. Content-Type, Authorization"
          />
          <Field
            name="corsMethods"
            label="Allowed methods"
            defaultValue={(cors?.methods ?? []).join(' ')}
            hint="Empty = what each route allows"
          />
          <Field name="corsExposedHeaders" label="Exposed response headers" defaultValue={(cors?.exposedHeaders ?? []).join(' ')} />
          <Field name="corsMaxAgeSeconds" label="Preflight max age (s)" type="number" defaultValue={cors?.maxAgeSeconds ?? 600} />
          <div className="pt-6">
            <Checkbox name="corsCredentials" label="Allow credentials (cookies, Authorization)" defaultChecked={cors?.credentials} />
          </div>
        </div>
      </fieldset>
      <fieldset className="rounded-md border border-slate-200 p-4">
        <legend className="px-1 text-sm font-medium text-slate-800">Client addresses</legend>
        <p className="mb-3 text-sm text-slate-600">Checked before any key lookup, on the real client address.</p>
        <IpRulesFields d={d.ipRules as IpRulesValue} />
        <div className="mt-3 grid gap-4 md:grid-cols-3">
          <Field
            name="perIpLimit"
            label="Limit per client address"
            type="number"
            defaultValue={perIp?.limit ?? null}
            hint="On top of each key's limits; empty = none"
          />
          <Field name="perIpWindowSeconds" label="Window (s)" type="number" defaultValue={perIp?.windowSeconds ?? 1} />
          <Select name="perIpLimitAlgorithm" label="Algorithm" defaultValue={perIp?.algorithm ?? 'sliding_window'} options={ALGORITHMS} />
        </div>
      </fieldset>
      <fieldset className="rounded-md border border-slate-200 p-4">
        <legend className="px-1 text-sm font-medium text-slate-800">Circuit breaker</legend>
        <p className="mb-3 text-sm text-slate-600">
          Per upstream target, in each gateway process. An open circuit answers 503 with Retry-After, never billed.
        </p>
        <Checkbox name="breakerEnabled" label="Open the circuit on failing targets" defaultChecked={cb !== null} />
        <div className="mt-3 grid gap-4 md:grid-cols-5">
          <Field
            name="breakerFailurePercent"
            label="Failures (%)"
            type="number"
            defaultValue={cb ? Math.round(cb.failureRatio * 100) : 50}
            hint="5xx and timeouts"
          />
          <Field name="breakerMinRequests" label="Min. calls" type="number" defaultValue={cb?.minRequests ?? 20} />
          <Field name="breakerWindowSeconds" label="Window (s)" type="number" defaultValue={cb?.windowSeconds ?? 30} />
          <Field name="breakerOpenSeconds" label="Open for (s)" type="number" defaultValue={cb?.openSeconds ?? 10} />
          <Field name="breakerHalfOpenProbes" label="Probes" type="number" defaultValue={cb?.halfOpenProbes ?? 1} />
        </div>
        <FieldError name="circuitBreaker" />
      </fieldset>
    </>
  );
}
