import { Checkbox, Field, TextArea } from './forms';
import { RouteEdgeFields } from './edge-fields';

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];

type HeaderOps = { set?: Record<string, string>; remove?: string[] };
export type RouteDefaults = {
  name?: string;
  path?: string;
  methods?: string[];
  cacheTtlSeconds?: number;
  requestTimeoutMs?: number | null;
  rateLimit?: unknown;
  transform?: unknown;
  requiredScopes?: string[];
  sharedRateLimit?: unknown;
};

const lines = (ops?: HeaderOps) =>
  Object.entries(ops?.set ?? {})
    .map(([k, v]) => `${k}: ${v}`)
    .join('\n');

/** The route form's fields, shared by "add a route" and each route's edit form. */
export function RouteFields({ d = {} }: { d?: RouteDefaults }) {
  const rl = (d.rateLimit ?? null) as { limit: number; windowSeconds: number } | null;
  const t = (d.transform ?? {}) as { requestHeaders?: HeaderOps; responseHeaders?: HeaderOps };
  return (
    <>
      <div className="grid gap-4 md:grid-cols-2">
        <Field
          name="path"
          label="Path"
          required
          defaultValue={d.path}
          maxLength={256}
          placeholder="/forecast/:city"
          hint="Literal segments, :params and an optional trailing /*"
        />
        <Field name="name" label="Name" defaultValue={d.name} maxLength={100} placeholder="Forecast" />
      </div>
      <fieldset>
        <legend className="text-sm font-medium text-slate-800">Methods (none = any)</legend>
        <div className="mt-2 flex flex-wrap gap-4">
          {METHODS.map((m) => (
            <Checkbox key={m} name="methods" value={m} label={m} defaultChecked={d.methods?.includes(m)} />
          ))}
        </div>
      </fieldset>
      <div className="grid gap-4 md:grid-cols-4">
        <Field name="cacheTtlSeconds" label="Cache TTL (s)" type="number" defaultValue={d.cacheTtlSeconds ?? 0} />
        <Field
          name="requestTimeoutMs"
          label="Timeout (ms)"
          type="number"
          defaultValue={d.requestTimeoutMs ?? null}
          hint="Empty = API default"
        />
        <Field
          name="rateLimit"
          label="Route limit"
          type="number"
          defaultValue={rl?.limit ?? null}
          hint="Requests per window"
          errorKey="rateLimit.limit"
        />
        <Field
          name="rateWindowSeconds"
          label="Window (s)"
          type="number"
          defaultValue={rl?.windowSeconds ?? 1}
          errorKey="rateLimit.windowSeconds"
        />
      </div>
      <RouteEdgeFields d={d} />
      <fieldset className="rounded-md border border-slate-200 p-4">
        <legend className="px-1 text-sm font-medium text-slate-800">Header transforms</legend>
        <div className="grid gap-4 md:grid-cols-2">
          <TextArea
            name="requestSet"
            label="Set on the request to the upstream"
            rows={2}
            defaultValue={lines(t.requestHeaders)}
            hint="One Name: value per line"
          />
          <TextArea
            name="requestRemove"
            label="Remove from the request"
            rows={2}
            defaultValue={(t.requestHeaders?.remove ?? []).join('\n')}
            hint="One header name per line"
          />
          <TextArea
            name="responseSet"
            label="Set on the response to the client"
            rows={2}
            defaultValue={lines(t.responseHeaders)}
            hint="One Name: value per line"
          />
          <TextArea
            name="responseRemove"
            label="Remove from the response"
            rows={2}
            defaultValue={(t.responseHeaders?.remove ?? []).join('\n')}
            hint="One header name per line"
          />
        </div>
      </fieldset>
    </>
  );
}
