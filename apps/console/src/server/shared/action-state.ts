import { unstable_rethrow } from 'next/navigation';
import { getRuntime } from './runtime';
import { ServiceError } from './context';
import { answerWithStatus } from './request-scope';
import { FIX_FIELD, type FormFix } from './fix-field';

export { FIX_FIELD, type FormFix };

export type FormState = {
  /** Bumped on every submission so inputs remount with the submitted values. */
  seq: number;
  ok?: boolean;
  message?: string;
  fields?: Record<string, string>;
  /** Everything the failed submission carried (but passwords and files), every value of a name in order. */
  values?: Record<string, string[]>;
  /**
   * A one-click fix the form can offer beside the error: a submit button with this name and value,
   * so the same form (and everything typed in it) is sent again with the fix applied.
   */
  fix?: FormFix;
  /** A secret shown once (API key, access token, invitation link). */
  secret?: string;
  secretLabel?: string;
};

export const initialFormState: FormState = { seq: 0 };

export const fixRequested = (fd: FormData, value: string): boolean => fd.get(FIX_FIELD) === value;

/** A ServiceError that also offers a fix; runAction passes the fix on to the form. */
export class FixableError extends ServiceError {
  constructor(
    err: ServiceError,
    public readonly fix: FormFix,
  ) {
    super(err.code, err.message, err.fields, err.retryAfterSeconds);
  }
}

function echo(fd: FormData | null): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (!fd) return out;
  let total = 0;
  for (const [k, v] of fd.entries()) {
    if (k.startsWith('$ACTION') || k === FIX_FIELD || /password/i.test(k) || typeof v !== 'string') continue;
    // Bounded: a hostile post can't make the answer much larger than a real form.
    if (total > 200_000 || (out[k]?.length ?? 0) >= 50) continue;
    const kept = v.slice(0, 100_000);
    total += kept.length;
    (out[k] ??= []).push(kept);
  }
  return out;
}

/**
 * Runs a server action body and turns expected failures into form state; anything unexpected is
 * logged and shown as a generic message (never a stack trace). Redirects pass through.
 */
export async function runAction(prev: FormState, fd: FormData | null, body: () => Promise<Partial<FormState> | void>): Promise<FormState> {
  const seq = (prev?.seq ?? 0) + 1;
  try {
    const res = (await body()) ?? {};
    return { seq, ok: true, ...res };
  } catch (err) {
    unstable_rethrow(err);
    if (err instanceof ServiceError) {
      // A refused attempt is a 429 on the wire (plain form post or the action's fetch alike); the
      // body still carries the form state, so the page shows the message either way (ADR 0023).
      if (err.code === 'rate_limited') answerWithStatus(429, { 'retry-after': String(err.retryAfterSeconds ?? 60) });
      return {
        seq,
        ok: false,
        message: err.message,
        fields: err.fields,
        values: echo(fd),
        ...(err instanceof FixableError ? { fix: err.fix } : {}),
      };
    }
    getRuntime().log.error({ err }, 'server action failed');
    return { seq, ok: false, message: 'Something went wrong on our side. Please try again.', values: echo(fd) };
  }
}

// ─── FormData → service input ─────────────────────────────────────────────────────────
// Services validate types strictly; these only translate the browser's strings.

export const str = (fd: FormData, name: string): string | undefined => {
  const v = fd.get(name);
  return typeof v === 'string' ? v : undefined;
};

/** '' → null (cleared), a number string → number, anything else passes through so validation names it. */
export const num = (fd: FormData, name: string): number | null | string | undefined => {
  const v = str(fd, name);
  if (v === undefined) return undefined;
  if (v.trim() === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : v;
};

export const numOr = (fd: FormData, name: string, fallback: number) => {
  const v = num(fd, name);
  return v === null || v === undefined ? fallback : v;
};

export const bool = (fd: FormData, name: string): boolean => {
  const v = fd.get(name);
  return v === 'on' || v === 'true' || v === '1';
};

export const list = (fd: FormData, name: string): string[] => fd.getAll(name).filter((v): v is string => typeof v === 'string' && v !== '');

/** Money typed as "12.50" → 1250 minor units; invalid text passes through for validation to name. */
export const minor = (fd: FormData, name: string): number | string | undefined => {
  const v = str(fd, name);
  if (v === undefined) return undefined;
  if (v.trim() === '') return 0;
  if (!/^\d{1,9}(\.\d{1,2})?$/.test(v.trim())) return v;
  return Math.round(Number(v.trim()) * 100);
};
