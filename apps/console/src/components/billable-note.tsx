// One set of words for "billable" vs "all requests", shown on every page that counts calls, so
// Usage (every call) and Billing (billable calls) never seem to disagree (issue 21, item 3).

/** Calls the gateway refused by policy: the plan or the key working as set up, not a failure. */
export const REFUSED_WORDS = 'missing or bad key, rate limit or used-up quota (401, 403, 429)';
export const REFUSED_HINT = `refused by policy: ${REFUSED_WORDS}`;
/** Calls the API or the gateway failed to answer. */
export const ERROR_WORDS = 'the API or the gateway failed to answer (5xx, unreachable, timeout)';

export const BILLABLE_WORDS =
  'Usage counts every call. Billing counts only billable calls: those your API answered, made with live keys. Calls refused by policy, calls the gateway could not deliver and calls with test keys are never billed.';

export function BillableNote() {
  return (
    <p data-testid="billable-note" className="mt-3 text-xs text-slate-600">
      {BILLABLE_WORDS}
    </p>
  );
}
