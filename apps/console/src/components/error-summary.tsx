'use client';

import type { Ref } from 'react';
import type { FormState } from '@/server/shared/action-state';
import { FIX_FIELD } from '@/server/shared/fix-field';
import { buttonStyles } from './ui';

/** Error key → the input that answers for it and its visible label. */
export type FieldLabels = Map<string, { id: string; label: string }>;

const sentence = (s: string) => (s ? s[0]!.toUpperCase() + s.slice(1) : s);

/** A key no field registered (e.g. `targets`): "targets" → "Targets", "tenantSlug" → "Tenant slug". */
function fallbackLabel(key: string): string {
  const last =
    key
      .split('.')
      .filter((p) => !/^\d+$/.test(p))
      .pop() ?? key;
  return sentence(last.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase());
}

/**
 * The one place a failed submit is explained: what went wrong in words, each field's problem
 * linked to the field (GOV.UK-style summary), and a one-click fix when the action offers one.
 * It takes focus after the submit, so keyboard and screen-reader users start here.
 */
export function ErrorSummary({ state, labels, ref }: { state: FormState; labels: FieldLabels; ref: Ref<HTMLDivElement> }) {
  const fields = Object.entries(state.fields ?? {}).filter(([k]) => k !== '_');
  const general = state.fields?._ ?? (fields.length === 0 ? state.message : undefined);
  return (
    <div
      ref={ref}
      tabIndex={-1}
      role="alert"
      data-testid="error-summary"
      className="rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800 focus:outline-none focus:ring-2 focus:ring-red-300"
    >
      <p className="font-semibold">
        {fields.length === 0
          ? sentence(general ?? 'Something went wrong.')
          : fields.length === 1
            ? 'One thing needs fixing before this can be saved:'
            : `${fields.length} things need fixing before this can be saved:`}
      </p>
      {fields.length > 0 ? (
        <ul className="mt-1 list-disc space-y-0.5 pl-5">
          {general ? <li>{sentence(general)}</li> : null}
          {fields.map(([key, msg]) => {
            const f = labels.get(key);
            const text = `${f?.label ?? fallbackLabel(key)} ${msg}`;
            return (
              <li key={key}>
                {f ? (
                  <a href={`#${f.id}`} className="underline">
                    {text}
                  </a>
                ) : (
                  text
                )}
              </li>
            );
          })}
        </ul>
      ) : null}
      {state.fix ? (
        <div className="mt-2 flex flex-wrap items-center gap-2">
          <button type="submit" name={FIX_FIELD} value={state.fix.value} className={buttonStyles.secondary}>
            {state.fix.label}
          </button>
          {state.fix.hint ? <span className="text-xs text-red-700">{state.fix.hint}</span> : null}
        </div>
      ) : null}
    </div>
  );
}
