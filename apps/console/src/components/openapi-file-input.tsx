'use client';

import { useState } from 'react';

const MAX = 1_000_000;

/** File picker that refuses files over 1 MB before they are sent (the server refuses them too). */
export function OpenApiFileInput() {
  const [error, setError] = useState<string | null>(null);
  return (
    <div>
      <label htmlFor="f-openapiFile" className="block text-sm font-medium text-slate-800">
        Upload (JSON, up to 1 MB)
      </label>
      <input
        id="f-openapiFile"
        name="openapiFile"
        type="file"
        accept=".json,application/json"
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? 'f-openapiFile-error' : undefined}
        className="mt-1 block w-full text-sm"
        onChange={(e) => {
          const file = e.currentTarget.files?.[0];
          const msg = file && file.size > MAX ? `${file.name} is ${(file.size / 1_000_000).toFixed(1)} MB; the limit is 1 MB` : null;
          e.currentTarget.setCustomValidity(msg ?? '');
          if (msg) e.currentTarget.value = '';
          setError(msg);
        }}
      />
      {error ? (
        <p id="f-openapiFile-error" className="mt-1 text-sm text-red-700">
          {error}
        </p>
      ) : null}
    </div>
  );
}
