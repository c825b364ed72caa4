'use client';

import { useActionState } from 'react';
import { buttonStyles } from '@/components/ui';
import { CallResponse } from '@/components/call-response';
import { tryItAction, type TryItState } from '../../actions';

/** Sends a real call through the gateway with the developer's key (pasted here, never stored). */
export function TryIt({
  slug,
  apiSlug,
  operations,
}: {
  slug: string;
  apiSlug: string;
  operations: Array<{ id: string; method: string; path: string; body: string | null }>;
}) {
  const [state, action, pending] = useActionState<TryItState, FormData>(tryItAction.bind(null, slug, apiSlug), { seq: 0 });
  const first = operations[0];
  return (
    <form action={action} className="space-y-3" aria-label="Try it">
      <div className="grid gap-3 md:grid-cols-[8rem_1fr]">
        <div>
          <label htmlFor="try-method" className="block text-sm font-medium text-slate-800">
            Method
          </label>
          <select
            id="try-method"
            name="method"
            defaultValue={first?.method ?? 'GET'}
            className="mt-1 block w-full rounded-md border border-slate-300 px-3 py-2 text-sm"
          >
            {['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].map((m) => (
              <option key={m}>{m}</option>
            ))}
          </select>
        </div>
        <div>
          <label htmlFor="try-path" className="block text-sm font-medium text-slate-800">
            Path (below the API's base path)
          </label>
          <input
            id="try-path"
            name="path"
            defaultValue={first?.path ?? '/'}
            className="mt-1 block w-full rounded-md border border-slate-300 px-3 py-2 font-mono text-sm"
          />
        </div>
      </div>
      <div>
        <label htmlFor="try-key" className="block text-sm font-medium text-slate-800">
          Your API key
        </label>
        <input
          id="try-key"
          name="key"
          type="password"
          autoComplete="off"
          placeholder="tg_live_…"
          className="mt-1 block w-full rounded-md border border-slate-300 px-3 py-2 font-mono text-sm"
        />
      </div>
      <div>
        <label htmlFor="try-body" className="block text-sm font-medium text-slate-800">
          JSON body (POST, PUT, PATCH)
        </label>
        <textarea
          id="try-body"
          name="body"
          rows={3}
          className="mt-1 block w-full rounded-md border border-slate-300 px-3 py-2 font-mono text-sm"
        />
      </div>
      <button type="submit" className={buttonStyles.primary} disabled={pending}>
        {pending ? 'Sending…' : 'Send request'}
      </button>
      {state.message && !state.ok ? (
        <p role="alert" className="text-sm text-red-700">
          {state.message}
        </p>
      ) : null}
      {state.result ? (
        <CallResponse
          testId="try-it-response"
          summary={`HTTP ${state.result.status} · ${state.result.durationMs} ms`}
          headers={state.result.headers}
          body={state.result.body}
          truncated={state.result.truncated}
        />
      ) : null}
    </form>
  );
}
