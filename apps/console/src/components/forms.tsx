'use client';

import { createContext, useActionState, useContext, useEffect, useRef, type ReactNode } from 'react';
import { useFormStatus } from 'react-dom';
import type { FormState } from '@/server/shared/action-state';
import { ErrorSummary, type FieldLabels } from './error-summary';
import { SecretReveal } from './secret-reveal';
import { buttonStyles, cx } from './ui';

type Action = (state: FormState, fd: FormData) => Promise<FormState>;
const FormCtx = createContext<FormState>({ seq: 0 });
// Several forms of the same shape on one page (one per route) need distinct input ids.
const IdCtx = createContext('');
// Fields say which input and label answer for an error key, so the summary can link to them.
const LabelsCtx = createContext<FieldLabels>(new Map());

/** What the last failed submission sent for `name` (every value, in order); undefined before one. */
export function useSubmitted(name: string): { values: string[] | undefined; seq: number; error: (key: string) => string | undefined } {
  const state = useContext(FormCtx);
  return { values: state.values ? (state.values[name] ?? []) : undefined, seq: state.seq, error: (key) => state.fields?.[key] };
}

/** Lets a custom input (e.g. a target row) join the error summary under its error key. */
export function useRegisterLabel(key: string, id: string, label: string) {
  useContext(LabelsCtx).set(key, { id, label });
}

/**
 * A form bound to a server action: shows the action's message, field errors beside fields,
 * keeps what was typed after a failed submit, and reveals a one-time secret on success.
 */
export function ActionForm({
  action,
  children,
  submitLabel,
  pendingLabel,
  variant = 'primary',
  className,
  successMessage,
  confirm,
  inline,
  idPrefix = '',
}: {
  action: Action;
  children?: ReactNode;
  submitLabel: string;
  pendingLabel?: string;
  variant?: keyof typeof buttonStyles;
  className?: string;
  successMessage?: string;
  confirm?: string;
  inline?: boolean;
  idPrefix?: string;
}) {
  const [state, formAction] = useActionState(action, { seq: 0 });
  const labels = useRef<FieldLabels>(new Map()).current;
  const summary = useRef<HTMLDivElement>(null);
  // After a failed submit, focus goes to the summary so a screen reader reads what to fix (WCAG 3.3.1).
  useEffect(() => {
    if (state.seq > 0 && !state.ok) summary.current?.focus();
  }, [state.seq, state.ok]);
  return (
    <IdCtx.Provider value={idPrefix}>
      <LabelsCtx.Provider value={labels}>
        <FormCtx.Provider value={state}>
          <form
            action={formAction}
            noValidate
            className={cx(inline ? 'inline-flex items-center gap-2' : 'space-y-4', className)}
            onSubmit={(e) => {
              if (confirm && !window.confirm(confirm)) e.preventDefault();
            }}
          >
            {!state.ok && (state.message || state.fields) ? <ErrorSummary ref={summary} state={state} labels={labels} /> : null}
            {state.ok && (state.message || successMessage) && !state.secret ? (
              <div role="status" className="rounded-md border border-emerald-200 bg-emerald-50 px-3 py-2 text-sm text-emerald-800">
                {state.message ?? successMessage}
              </div>
            ) : null}
            {state.ok && state.secret ? <SecretReveal label={state.secretLabel ?? 'Secret'} secret={state.secret} /> : null}
            {children}
            <Submit label={submitLabel} pendingLabel={pendingLabel} variant={variant} />
          </form>
        </FormCtx.Provider>
      </LabelsCtx.Provider>
    </IdCtx.Provider>
  );
}

function Submit({ label, pendingLabel, variant }: { label: string; pendingLabel?: string; variant: keyof typeof buttonStyles }) {
  const { pending } = useFormStatus();
  return (
    <div>
      <button type="submit" className={buttonStyles[variant]} disabled={pending} aria-disabled={pending}>
        {pending ? (pendingLabel ?? 'Saving…') : label}
      </button>
    </div>
  );
}

function useField(name: string) {
  const state = useContext(FormCtx);
  const error = state.fields?.[name];
  const value = state.values?.[name]?.[0];
  return { error, value, seq: state.seq, prefix: useContext(IdCtx) };
}

/** Registers a field's label for the error summary and returns its input id. */
function useFieldId(name: string, errorKey: string, label: string) {
  const id = `f-${useContext(IdCtx)}${name}`;
  useRegisterLabel(errorKey, id, label);
  return id;
}

const inputCls = (error?: string) =>
  cx(
    'block w-full rounded-md border bg-white px-3 py-2 text-sm text-slate-900 shadow-sm placeholder:text-slate-400 focus:outline-none focus:ring-2',
    error ? 'border-red-400 focus:ring-red-300' : 'border-slate-300 focus:border-brand-500 focus:ring-brand-100',
  );

type FieldProps = {
  name: string;
  label: string;
  hint?: ReactNode;
  defaultValue?: string | number | null;
  type?: string;
  required?: boolean;
  placeholder?: string;
  autoComplete?: string;
  errorKey?: string;
  min?: number;
  max?: number;
  step?: string;
  maxLength?: number;
};

export function Field({
  name,
  label,
  hint,
  defaultValue,
  type = 'text',
  required,
  placeholder,
  autoComplete,
  errorKey,
  min,
  max,
  step,
  maxLength,
}: FieldProps) {
  const { error, seq } = useField(errorKey ?? name);
  const submitted = useContext(FormCtx).values?.[name]?.[0];
  const id = useFieldId(name, errorKey ?? name, label);
  return (
    <div>
      <label htmlFor={id} className="block text-sm font-medium text-slate-800">
        {label}
        {required ? (
          <span aria-hidden="true" className="text-red-600">
            {' '}
            *
          </span>
        ) : null}
      </label>
      <input
        key={seq}
        id={id}
        name={name}
        type={type}
        required={required}
        placeholder={placeholder}
        autoComplete={autoComplete}
        min={min}
        max={max}
        step={step}
        maxLength={maxLength}
        defaultValue={
          type === 'password' ? undefined : (submitted ?? (defaultValue === null || defaultValue === undefined ? '' : String(defaultValue)))
        }
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? `${id}-error` : hint ? `${id}-hint` : undefined}
        className={cx('mt-1', inputCls(error))}
      />
      {error ? (
        <p id={`${id}-error`} className="mt-1 text-sm text-red-700">
          {label} {error}
        </p>
      ) : hint ? (
        <p id={`${id}-hint`} className="mt-1 text-xs text-slate-500">
          {hint}
        </p>
      ) : null}
    </div>
  );
}

export function TextArea({
  name,
  label,
  hint,
  defaultValue,
  rows = 4,
  errorKey,
}: {
  name: string;
  label: string;
  hint?: ReactNode;
  defaultValue?: string | null;
  rows?: number;
  errorKey?: string;
}) {
  const { error, seq } = useField(errorKey ?? name);
  const submitted = useContext(FormCtx).values?.[name]?.[0];
  const id = useFieldId(name, errorKey ?? name, label);
  return (
    <div>
      <label htmlFor={id} className="block text-sm font-medium text-slate-800">
        {label}
      </label>
      <textarea
        key={seq}
        id={id}
        name={name}
        rows={rows}
        defaultValue={submitted ?? defaultValue ?? ''}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? `${id}-error` : hint ? `${id}-hint` : undefined}
        className={cx('mt-1 font-mono', inputCls(error))}
      />
      {error ? (
        <p id={`${id}-error`} className="mt-1 text-sm text-red-700">
          {label} {error}
        </p>
      ) : hint ? (
        <p id={`${id}-hint`} className="mt-1 text-xs text-slate-500">
          {hint}
        </p>
      ) : null}
    </div>
  );
}

export function Select({
  name,
  label,
  options,
  defaultValue,
  hint,
}: {
  name: string;
  label: string;
  options: Array<{ value: string; label: string }>;
  defaultValue?: string;
  hint?: ReactNode;
}) {
  const { error, value, seq } = useField(name);
  const id = useFieldId(name, name, label);
  return (
    <div>
      <label htmlFor={id} className="block text-sm font-medium text-slate-800">
        {label}
      </label>
      <select
        key={seq}
        id={id}
        name={name}
        defaultValue={value ?? defaultValue}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? `${id}-error` : hint ? `${id}-hint` : undefined}
        className={cx('mt-1', inputCls(error))}
      >
        {options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
      {error ? (
        <p id={`${id}-error`} className="mt-1 text-sm text-red-700">
          {label} {error}
        </p>
      ) : hint ? (
        <p id={`${id}-hint`} className="mt-1 text-xs text-slate-500">
          {hint}
        </p>
      ) : null}
    </div>
  );
}

export function Checkbox({
  name,
  label,
  hint,
  defaultChecked,
  value = 'on',
}: {
  name: string;
  label: string;
  hint?: ReactNode;
  defaultChecked?: boolean;
  value?: string;
}) {
  const state = useContext(FormCtx);
  const id = `f-${useContext(IdCtx)}${name}-${value}`;
  const submitted = state.values ? (state.values[name] ?? []).includes(value) : undefined;
  return (
    <div className="flex items-start gap-2">
      <input
        key={state.seq}
        id={id}
        type="checkbox"
        name={name}
        value={value}
        defaultChecked={submitted ?? defaultChecked}
        className="mt-0.5 h-4 w-4 rounded border-slate-300 text-brand-600"
      />
      <label htmlFor={id} className="text-sm text-slate-800">
        {label}
        {hint ? <span className="block text-xs text-slate-500">{hint}</span> : null}
      </label>
    </div>
  );
}

export function FieldError({ name, id }: { name: string; id?: string }) {
  const { error } = useField(name);
  return error ? (
    <p id={id} className="text-sm text-red-700">
      {error}
    </p>
  ) : null;
}

export function Hidden({ name, value }: { name: string; value: string }) {
  return <input type="hidden" name={name} value={value} />;
}
