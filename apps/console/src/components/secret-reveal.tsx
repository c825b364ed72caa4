'use client';

import { useState } from 'react';
import { buttonStyles } from './ui';

/** A secret (key, token, invitation link) shown once after a successful submit, with a copy button. */
export function SecretReveal({ label, secret }: { label: string; secret: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <div role="status" className="rounded-md border border-amber-300 bg-amber-50 p-4">
      <p className="text-sm font-semibold text-amber-900">{label}: copy it now. It will not be shown again.</p>
      <div className="mt-2 flex items-center gap-2">
        <code
          data-testid="secret"
          className="block flex-1 overflow-x-auto rounded bg-white px-3 py-2 font-mono text-sm text-slate-900 ring-1 ring-amber-200"
        >
          {secret}
        </code>
        <button
          type="button"
          className={buttonStyles.secondary}
          onClick={() => {
            void navigator.clipboard?.writeText(secret).then(() => setCopied(true));
          }}
        >
          {copied ? 'Copied' : 'Copy'}
        </button>
      </div>
    </div>
  );
}
