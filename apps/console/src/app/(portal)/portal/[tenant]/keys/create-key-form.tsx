'use client';

import { useActionState, useState } from 'react';
import type { FormState } from '@/server/shared/action-state';
import { codeSamples } from '@/server/portal/reference';
import { buttonStyles } from '@/components/ui';
import { createKeyAction } from '../actions';
import { CodeSamples } from '../code-samples';

/**
 * Creates a key and shows its secret once, with a copy button and ready-to-run samples that
 * carry the real key (this is the only moment the portal has it).
 */
export function CreateKeyForm({ slug, sampleUrl }: { slug: string; sampleUrl: string | null }) {
  const [state, action, pending] = useActionState<FormState, FormData>(createKeyAction.bind(null, slug), { seq: 0 });
  const [copied, setCopied] = useState(false);
  const samples = state.ok && state.secret && sampleUrl ? codeSamples(sampleUrl, 'GET', state.secret, null) : null;
  return (
    <form action={action} className="space-y-4">
      {state.message && !state.ok ? (
        <div role="alert" className="rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800">
          {state.message}
        </div>
      ) : null}
      {state.ok && state.secret ? (
        <div role="status" className="rounded-md border border-amber-300 bg-amber-50 p-4">
          <p className="text-sm font-semibold text-amber-900">
            {state.secretLabel ?? 'Your new key'}: copy it now. It will not be shown again.
          </p>
          <div className="mt-2 flex items-center gap-2">
            <code
              data-testid="secret"
              className="block flex-1 overflow-x-auto rounded bg-white px-3 py-2 font-mono text-sm text-slate-900 ring-1 ring-amber-200"
            >
              {state.secret}
            </code>
            <button
              type="button"
              className={buttonStyles.secondary}
              onClick={() => void navigator.clipboard?.writeText(state.secret!).then(() => setCopied(true))}
            >
              {copied ? 'Copied' : 'Copy'}
            </button>
          </div>
          {samples ? (
            <div className="mt-3 space-y-2">
              <p className="text-sm text-amber-900">Try it now:</p>
              <CodeSamples samples={samples} testIdPrefix="new-key-sample-" />
            </div>
          ) : null}
        </div>
      ) : null}
      <div>
        <label htmlFor="new-key-name" className="block text-sm font-medium text-slate-800">
          Key name
        </label>
        <input
          key={state.seq}
          id="new-key-name"
          name="name"
          maxLength={100}
          placeholder="e.g. production server"
          className="mt-1 block w-full rounded-md border border-slate-300 px-3 py-2 text-sm"
        />
        {state.fields?.name ? <p className="mt-1 text-sm text-red-700">Key name {state.fields.name}</p> : null}
      </div>
      <button type="submit" className={buttonStyles.primary} disabled={pending}>
        {pending ? 'Creating…' : 'Create key'}
      </button>
    </form>
  );
}
