'use client';

import { useActionState, useState } from 'react';
import type { FormState } from '@/server/shared/action-state';
import { buttonStyles } from '@/components/ui';
import { renameKeyAction, revokeKeyAction, rollKeyAction } from './actions';

function Secret({ label, secret }: { label: string; secret: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <div role="status" className="mt-2 rounded-md border border-amber-300 bg-amber-50 p-3">
      <p className="text-xs font-semibold text-amber-900">{label}: copy it now. It will not be shown again.</p>
      <div className="mt-1 flex items-center gap-2">
        <code data-testid="secret" className="block flex-1 overflow-x-auto rounded bg-white px-2 py-1 font-mono text-xs text-slate-900">
          {secret}
        </code>
        <button
          type="button"
          className={buttonStyles.secondary}
          onClick={() => void navigator.clipboard?.writeText(secret).then(() => setCopied(true))}
        >
          {copied ? 'Copied' : 'Copy'}
        </button>
      </div>
    </div>
  );
}

function Msg({ state }: { state: FormState }) {
  if (!state.message) return null;
  return (
    <p role={state.ok ? 'status' : 'alert'} className={state.ok ? 'text-xs text-emerald-800' : 'text-xs text-red-700'}>
      {state.message}
    </p>
  );
}

/** Rename, roll (with a grace period) and revoke for one of the developer's own keys. */
export function KeyRowActions({ slug, keyId, name, prefix }: { slug: string; keyId: string; name: string; prefix: string }) {
  const [renameState, rename, renaming] = useActionState(renameKeyAction.bind(null, slug, keyId), { seq: 0 });
  const [rollState, roll, rolling] = useActionState(rollKeyAction.bind(null, slug, keyId), { seq: 0 });
  const [revokeState, revoke, revoking] = useActionState(revokeKeyAction.bind(null, slug, keyId), { seq: 0 });
  return (
    <div className="space-y-2">
      <details>
        <summary className="cursor-pointer text-sm font-medium text-brand-700">Manage {prefix}…</summary>
        <div className="mt-2 space-y-3">
          <form action={rename} className="flex items-end gap-2">
            <div>
              <label htmlFor={`rename-${keyId}`} className="block text-xs font-medium text-slate-800">
                Name
              </label>
              <input
                id={`rename-${keyId}`}
                name="name"
                defaultValue={name}
                maxLength={100}
                className="mt-1 rounded-md border border-slate-300 px-2 py-1 text-sm"
              />
            </div>
            <button type="submit" className={buttonStyles.secondary} disabled={renaming}>
              Rename
            </button>
          </form>
          <Msg state={renameState} />
          <form action={roll} className="flex items-end gap-2">
            <div>
              <label htmlFor={`grace-${keyId}`} className="block text-xs font-medium text-slate-800">
                Old key keeps working for (hours)
              </label>
              <input
                id={`grace-${keyId}`}
                name="graceHours"
                type="number"
                min={0}
                max={168}
                defaultValue={24}
                className="mt-1 w-24 rounded-md border border-slate-300 px-2 py-1 text-sm"
              />
            </div>
            <button type="submit" className={buttonStyles.secondary} disabled={rolling}>
              Roll key
            </button>
          </form>
          <Msg state={rollState.secret ? { seq: 0 } : rollState} />
          {rollState.ok && rollState.secret ? <Secret label={rollState.secretLabel ?? 'New key'} secret={rollState.secret} /> : null}
          <form
            action={revoke}
            onSubmit={(e) => {
              if (!window.confirm(`Revoke ${prefix}…? Calls with it stop working at once.`)) e.preventDefault();
            }}
          >
            <button type="submit" className={buttonStyles.danger} disabled={revoking}>
              Revoke
            </button>
          </form>
          <Msg state={revokeState} />
        </div>
      </details>
    </div>
  );
}
