import type { ReactNode } from 'react';

/**
 * The answer to a call made from the UI through the gateway (the console's test call, the
 * portal's try-it): a summary line, the response headers (folded) and the body.
 */
export function CallResponse({
  testId,
  summary,
  headers,
  body,
  truncated = false,
}: {
  testId: string;
  summary: ReactNode;
  headers: [string, string][];
  body: string;
  truncated?: boolean;
}) {
  return (
    <div role="status" className="rounded-md border border-slate-200 bg-slate-50 p-3 text-sm" data-testid={testId}>
      <p className="font-medium">{summary}</p>
      {headers.length ? (
        <details className="mt-2">
          <summary className="cursor-pointer text-xs text-slate-600">Response headers</summary>
          <pre tabIndex={0} className="mt-1 overflow-x-auto text-xs">
            {headers.map(([k, v]) => `${k}: ${v}`).join('\n')}
          </pre>
        </details>
      ) : null}
      <pre
        tabIndex={0}
        className="mt-2 max-h-64 overflow-auto whitespace-pre-wrap break-all rounded bg-white p-2 font-mono text-xs ring-1 ring-slate-200"
      >
        {body || '(empty body)'}
        {truncated ? '\n… (truncated)' : ''}
      </pre>
    </div>
  );
}
