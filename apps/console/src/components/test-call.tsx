'use client';

import { useActionState, useState } from 'react';
import type { TestCallResult } from '@/app/(console)/t/[tenant]/_actions/test-call';
import { buttonStyles } from './ui';
import { CallResponse } from './call-response';

export function TestCall({ action }: { action: (s: TestCallResult, fd: FormData) => Promise<TestCallResult> }) {
  const [state, formAction, pending] = useActionState(action, { seq: 0 });
  // Controlled, so the form keeps method, path and key between calls (React resets uncontrolled forms).
  const [method, setMethod] = useState('GET');
  const [path, setPath] = useState('/');
  const [key, setKey] = useState('');
  return (
    <form action={formAction} className="space-y-3">
      <div className="grid gap-3 md:grid-cols-[8rem_1fr]">
        <div>
          <label htmlFor="tc-method" className="block text-sm font-medium text-slate-800">
            Method
          </label>
          <select
            id="tc-method"
            name="method"
            value={method}
            onChange={(e) => setMethod(e.target.value)}
            className="mt-1 block w-full rounded-md border border-slate-300 px-3 py-2 text-sm"
          >
            {['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'].map((m) => (
              <option key={m}>{m}</option>
            ))}
          </select>
        </div>
        <div>
          <label htmlFor="tc-path" className="block text-sm font-medium text-slate-800">
            Path (below the base path)
          </label>
          <input
            id="tc-path"
            name="path"
            value={path}
            onChange={(e) => setPath(e.target.value)}
            className="mt-1 block w-full rounded-md border border-slate-300 px-3 py-2 font-mono text-sm"
          />
        </div>
      </div>
      <div>
        <label htmlFor="tc-key" className="block text-sm font-medium text-slate-800">
          API key
        </label>
        <input
          id="tc-key"
          name="key"
          type="password"
          autoComplete="off"
          value={key}
          onChange={(e) => setKey(e.target.value)}
          placeholder="empty = temporary test key"
          className="mt-1 block w-full rounded-md border border-slate-300 px-3 py-2 font-mono text-sm"
        />
        <p className="mt-1 text-xs text-slate-500">
          Leave empty to call with a temporary test key the console issues and revokes right after (developers and above), or paste one of
          your keys. Keys are sent to the gateway only.
        </p>
      </div>
      <button type="submit" className={buttonStyles.secondary} disabled={pending}>
        {pending ? 'Calling…' : 'Send test call'}
      </button>
      {state.message && !state.ok ? (
        <p role="alert" className="text-sm text-red-700">
          {state.message}
        </p>
      ) : null}
      {state.response ? (
        <CallResponse
          testId="test-call-response"
          summary={
            <>
              {state.response.status} · {state.response.ms} ms · <span className="font-mono text-xs">{state.response.url}</span>
            </>
          }
          headers={state.response.headers}
          body={state.response.body}
        />
      ) : null}
    </form>
  );
}
