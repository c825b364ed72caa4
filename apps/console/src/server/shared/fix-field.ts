// No imports: client components read this too (the error summary renders the fix button).

/** A one-click fix a failed form offers: a submit button named FIX_FIELD with this value. */
export type FormFix = { value: string; label: string; hint?: string };

/** The submit button's name; the action sees `fix=<value>` in the form data. */
export const FIX_FIELD = 'fix';
