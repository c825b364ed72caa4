'use client';

import { useState } from 'react';
import { FieldError, useRegisterLabel, useSubmitted } from './forms';
import { buttonStyles } from './ui';

type Row = { url: string; weight: number | string };

/**
 * Upstream target rows (URL + weight); rows can be added and removed with the keyboard. After a
 * failed submit the rows come back as they were sent, so nothing has to be typed again.
 */
export function TargetsEditor({ initial }: { initial: Row[] }) {
  const urls = useSubmitted('targetUrl');
  const weights = useSubmitted('targetWeight');
  const rows = urls.values ? urls.values.map((url, i) => ({ url, weight: weights.values?.[i] ?? 1 })) : initial;
  return <TargetRows key={urls.seq} initial={rows} />;
}

function TargetUrl({ i, k, url, invalid }: { i: number; k: number; url: string; invalid: boolean }) {
  const id = `target-url-${k}`;
  useRegisterLabel(`targets.${i}.url`, id, `Target ${i + 1} URL`);
  return (
    <input
      id={id}
      name="targetUrl"
      defaultValue={url}
      placeholder="https://api.example.com"
      aria-invalid={invalid || undefined}
      aria-describedby={invalid ? `${id}-error` : undefined}
      className={`block w-full rounded-md border px-3 py-2 text-sm shadow-sm focus:outline-none focus:ring-2 ${invalid ? 'border-red-400 focus:ring-red-300' : 'border-slate-300 focus:border-brand-500 focus:ring-brand-100'}`}
    />
  );
}

function TargetRows({ initial }: { initial: Row[] }) {
  const { error } = useSubmitted('targetUrl');
  useRegisterLabel('targets', 'target-url-0', 'Upstream targets');
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
              <TargetUrl i={i} k={r.k} url={r.url} invalid={Boolean(error(`targets.${i}.url`))} />
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
            <FieldError name={`targets.${i}.url`} id={`target-url-${r.k}-error`} />
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
