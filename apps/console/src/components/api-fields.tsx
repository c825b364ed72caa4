import { Checkbox, Field, Select, TextArea } from './forms';
import { TargetsEditor } from './targets-editor';
import { OpenApiFileInput } from './openapi-file-input';
import { ApiOAuthFields } from './api-oauth-fields';

type ApiDefaults = {
  name?: string;
  slug?: string;
  description?: string;
  basePath?: string;
  version?: string;
  visibility?: string;
  authMode?: string;
  allowQueryKey?: boolean;
  failMode?: string;
  loadBalancing?: string;
  connectTimeoutMs?: number;
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
  retries?: number;
  targets?: Array<{ url: string; weight: number }>;
  openapiUrl?: string | null;
  jwtConfig?: unknown;
  introspectionConfig?: unknown;
  deprecatedAt?: unknown;
  sunsetAt?: unknown;
  deprecationLink?: string | null;
};

type JwtDefaults = {
  issuer?: string | null;
  audience?: string | null;
  jwksUrl?: string | null;
  algorithms?: string[];
  forwardClaims?: string[];
  requireExp?: boolean;
  maxLifetimeSeconds?: number;
  consumerClaim?: string | null;
};
const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'PS256', 'EdDSA', 'HS256', 'HS384', 'HS512'];

/** The API form's fields, shared by "new" and "edit". */
export function ApiFields({ d = {} }: { d?: ApiDefaults }) {
  const jwt = (d.jwtConfig && typeof d.jwtConfig === 'object' ? d.jwtConfig : {}) as JwtDefaults;
  const algorithms = jwt.algorithms?.length ? jwt.algorithms : ['RS256'];
  return (
    <>
      <div className="grid gap-4 md:grid-cols-2">
        <Field name="name" label="Name" required defaultValue={d.name} maxLength={100} placeholder="Weather API" />
        <Field
          name="slug"
          label="Slug"
          required
          defaultValue={d.slug}
          maxLength={48}
          placeholder="weather"
          hint="Used in URLs and the portal."
        />
        <Field
          name="basePath"
          label="Base path"
          required
          defaultValue={d.basePath}
          placeholder="/weather"
          hint="Calls to {gateway}/weather/… go to this API."
        />
        <Field name="version" label="Version" defaultValue={d.version ?? 'v1'} />
      </div>
      <TextArea name="description" label="Description" defaultValue={d.description} rows={2} />
      <TargetsEditor initial={d.targets ?? []} />
      <div className="grid gap-4 md:grid-cols-3">
        <Select
          name="authMode"
          label="Authentication"
          defaultValue={d.authMode ?? 'API_KEY'}
          options={[
            { value: 'API_KEY', label: 'API key' },
            { value: 'JWT', label: 'JWT' },
            { value: 'INTROSPECTION', label: 'OAuth token introspection' },
            { value: 'NONE', label: 'None (public)' },
          ]}
        />
        <Select
          name="visibility"
          label="Portal visibility"
          defaultValue={d.visibility ?? 'PRIVATE'}
          options={[
            { value: 'PRIVATE', label: 'Private (hidden from the portal)' },
            { value: 'PUBLIC', label: 'Public (listed in the portal)' },
          ]}
          hint="New APIs start private: only keys you issue in the console can call them. Public APIs appear in your developer portal, where developers sign up for a plan and get their own key."
        />
        <Select
          name="loadBalancing"
          label="Load balancing"
          defaultValue={d.loadBalancing ?? 'ROUND_ROBIN'}
          options={[
            { value: 'ROUND_ROBIN', label: 'Round robin' },
            { value: 'WEIGHTED', label: 'Weighted' },
          ]}
        />
      </div>
      <div className="grid gap-4 md:grid-cols-4">
        <Field name="connectTimeoutMs" label="Connect timeout (ms)" type="number" defaultValue={d.connectTimeoutMs ?? 2000} />
        <Field
          name="headersTimeoutMs"
          label="Read timeout (ms)"
          hint="Longest wait for the response headers, and then between two reads of the body."
          type="number"
          defaultValue={d.headersTimeoutMs ?? 10000}
        />
        <Field name="requestTimeoutMs" label="Request timeout (ms)" type="number" defaultValue={d.requestTimeoutMs ?? 30000} />
        <Field name="retries" label="Retries (idempotent)" type="number" defaultValue={d.retries ?? 1} />
      </div>
      <div className="grid gap-4 md:grid-cols-2">
        <Select
          name="failMode"
          label="When Redis is unreachable"
          defaultValue={d.failMode ?? 'OPEN'}
          options={[
            { value: 'OPEN', label: 'Fail open (serve with local limits)' },
            { value: 'CLOSED', label: 'Fail closed (503)' },
          ]}
        />
        <div className="pt-6">
          <Checkbox
            name="allowQueryKey"
            label="Accept keys in the query string (?api_key=)"
            defaultChecked={d.allowQueryKey}
            hint="Only for clients that can't send headers."
          />
        </div>
      </div>
      <fieldset className="rounded-md border border-slate-200 p-4">
        <legend className="px-1 text-sm font-medium text-slate-800">JWT validation (when authentication is JWT)</legend>
        <div className="grid gap-4 md:grid-cols-2">
          <Field
            name="jwtIssuer"
            label="Issuer (iss)"
            defaultValue={jwt.issuer ?? ''}
            maxLength={512}
            placeholder="https://auth.example.com/"
          />
          <Field name="jwtAudience" label="Audience (aud)" defaultValue={jwt.audience ?? ''} maxLength={512} placeholder="weather-api" />
          <Field
            name="jwtJwksUrl"
            label="JWKS URL"
            defaultValue={jwt.jwksUrl ?? ''}
            maxLength={2048}
            placeholder="https://auth.example.com/.well-known/jwks.json"
            hint="Fetched by the gateway; private and metadata addresses are refused unless this workspace allows private targets."
          />
          <Field
            name="jwtForwardClaims"
            label="Claims to forward"
            defaultValue={(jwt.forwardClaims ?? []).join(', ')}
            placeholder="sub, scope"
            hint="Sent upstream as X-Tollgate-Claim-{name}."
          />
          <Field
            name="jwtMaxLifetimeSeconds"
            label="Longest token lifetime (s)"
            type="number"
            defaultValue={jwt.maxLifetimeSeconds ?? 86400}
            hint="Tokens valid for longer (exp minus iat or now) are refused."
          />
          <Field
            name="jwtConsumerClaim"
            label="Bill to the consumer bound to claim"
            defaultValue={jwt.consumerClaim ?? ''}
            placeholder="sub"
            hint="Set: every token's value must be bound to a consumer (403 otherwise)."
          />
          <div className="pt-6">
            <Checkbox
              name="jwtAllowNoExp"
              label="Accept tokens without exp"
              defaultChecked={jwt.requireExp === false}
              hint="Such tokens never expire; off by default."
            />
          </div>
        </div>
        <fieldset className="mt-3">
          <legend className="text-sm font-medium text-slate-800">Accepted algorithms</legend>
          <div className="mt-2 flex flex-wrap gap-4">
            {JWT_ALGORITHMS.map((a) => (
              <Checkbox key={a} name="jwtAlgorithms" value={a} label={a} defaultChecked={algorithms.includes(a)} />
            ))}
          </div>
        </fieldset>
      </fieldset>
      <ApiOAuthFields d={d} />
      <fieldset className="rounded-md border border-slate-200 p-4">
        <legend className="px-1 text-sm font-medium text-slate-800">OpenAPI document (optional)</legend>
        <div className="grid gap-4 md:grid-cols-2">
          <OpenApiFileInput />
          <Field
            name="openapiUrl"
            label="…or fetch from URL"
            defaultValue={d.openapiUrl ?? ''}
            placeholder="https://api.example.com/openapi.json"
          />
        </div>
        <div className="mt-3">
          <TextArea
            name="openapi"
            label="…or paste it"
            rows={3}
            errorKey="openapi"
            hint="Validated on save: OpenAPI 3.0 or 3.1 with info and paths."
          />
        </div>
      </fieldset>
    </>
  );
}
