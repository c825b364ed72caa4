'use client';

import { useState } from 'react';
import { FieldError } from './forms';
import { buttonStyles } from './ui';

/** Upstream target rows (URL + weight); rows can be added and removed with the keyboard. */
export function TargetsEditor({ initial }: { initial: Array<{ url: string; weight: number }> }) {
  const [rows, setRows] = useState(() => (initial.length ? initial : [{ url: '', weight: 1 }]).map((r, i) => ({ ...r, k: i })));
  const [next, setNext] = useState(rows.length);
  return (
    <fieldset>
      <legend className="text-sm font-medium text-slate-800">Upstream targets</legend>
      <p className="text-xs text-slate-500">Where the gateway forwards calls. Weights split traffic between targets.</p>
      <div className="mt-2 space-y-2">
        {rows.map((r, i) => (
          <div key={r.k}>
            <div className="flex gap-2">
              <label className="sr-only" htmlFor={`target-url-${r.k}`}>
                Target {i + 1} URL
              </label>
              <input
                id={`target-url-${r.k}`}
                name="targetUrl"
                defaultValue={r.url}
                placeholder="https://api.example.com"
                className="block w-full rounded-md border border-slate-300 px-3 py-2 text-sm shadow-sm focus:border-brand-500 focus:outline-none focus:ring-2 focus:ring-brand-100"
              />
              <label className="sr-only" htmlFor={`target-weight-${r.k}`}>
                Target {i + 1} weight
              </label>
              <input
                id={`target-weight-${r.k}`}
                name="targetWeight"
                type="number"
                min={0}
                max={1000}
                defaultValue={r.weight}
                className="block w-24 rounded-md border border-slate-300 px-3 py-2 text-sm shadow-sm"
              />
              {rows.length > 1 ? (
                <button
                  type="button"
                  className={buttonStyles.secondary}
                  onClick={() => setRows(rows.filter((x) => x.k !== r.k))}
                  aria-label={`Remove target ${i + 1}`}
                >
                  Remove
                </button>
              ) : null}
            </div>
            <FieldError name={`targets.${i}.url`} />
          </div>
        ))}
      </div>
      <FieldError name="targets" />
      {rows.length < 10 ? (
        <button
          type="button"
          className={`${buttonStyles.ghost} mt-2`}
          onClick={() => {
            setRows([...rows, { url: '', weight: 1, k: next }]);
            setNext(next + 1);
          }}
        >
          + Add target
        </button>
      ) : null}
    </fieldset>
  );
}
