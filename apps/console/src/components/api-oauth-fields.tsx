import { Field } from './forms';

type IntrospectionDefaults = {
  endpoint?: string;
  clientId?: string;
  clientSecretSet?: boolean;
  cacheMaxTtlSeconds?: number;
  requiredScopes?: string[];
  consumerClaim?: string | null;
};

const day = (v: unknown) => (typeof v === 'string' ? v.slice(0, 10) : v instanceof Date ? v.toISOString().slice(0, 10) : '');

/** The API form's introspection settings and deprecation dates (ADR 0028). */
export function ApiOAuthFields({
  d = {},
}: {
  d?: { introspectionConfig?: unknown; deprecatedAt?: unknown; sunsetAt?: unknown; deprecationLink?: string | null };
}) {
  const i = (d.introspectionConfig && typeof d.introspectionConfig === 'object' ? d.introspectionConfig : {}) as IntrospectionDefaults;
  return (
    <>
      <fieldset className="rounded-md border border-slate-200 p-4">
        <legend className="px-1 text-sm font-medium text-slate-800">
          OAuth token introspection (when authentication is introspection)
        </legend>
        <div className="grid gap-4 md:grid-cols-2">
          <Field
            name="introspectionEndpoint"
            label="Introspection endpoint (RFC 7662)"
            defaultValue={i.endpoint ?? ''}
            maxLength={2048}
            placeholder="https://auth.example.com/oauth2/introspect"
            hint="Called by the gateway; private and metadata addresses are refused unless this workspace allows private targets."
            errorKey="introspectionConfig.endpoint"
          />
          <Field name="introspectionClientId" label="Client id" defaultValue={i.clientId ?? ''} maxLength={256} />
          <Field
            name="introspectionClientSecret"
            label="Client secret"
            type="password"
            autoComplete="off"
            placeholder={i.clientSecretSet ? '(stored — leave blank to keep)' : ''}
            hint="Sent with client_secret_basic. Never shown again."
            errorKey="introspectionConfig.clientSecret"
          />
          <Field
            name="introspectionCacheMaxTtlSeconds"
            label="Cache answers for at most (s)"
            type="number"
            defaultValue={i.cacheMaxTtlSeconds ?? 60}
            hint="Never past the token's exp; a revoked token works at most this long. 0 = ask every time."
          />
          <Field
            name="introspectionRequiredScopes"
            label="Required scopes"
            defaultValue={(i.requiredScopes ?? []).join(' ')}
            placeholder="orders.read"
          />
          <Field
            name="introspectionConsumerClaim"
            label="Bill to the consumer bound to"
            defaultValue={i.consumerClaim ?? ''}
            placeholder="client_id"
            hint="Set: every caller's value must be bound to a consumer (403 otherwise)."
          />
        </div>
      </fieldset>
      <fieldset className="rounded-md border border-slate-200 p-4">
        <legend className="px-1 text-sm font-medium text-slate-800">Deprecation (optional)</legend>
        <div className="grid gap-4 md:grid-cols-3">
          <Field
            name="deprecatedAt"
            label="Deprecated since"
            type="date"
            defaultValue={day(d.deprecatedAt)}
            hint="Deprecation header (RFC 9745)."
          />
          <Field name="sunsetAt" label="Sunset on" type="date" defaultValue={day(d.sunsetAt)} hint="Sunset header (RFC 8594)." />
          <Field
            name="deprecationLink"
            label="Migration guide"
            defaultValue={d.deprecationLink ?? ''}
            placeholder="https://docs.example.com/v2"
          />
        </div>
      </fieldset>
    </>
  );
}
