import type { codeSamples } from '@/server/portal/reference';

/** curl, JavaScript and Python samples, curl unfolded; each block is keyboard-scrollable. */
export function CodeSamples({ samples, testIdPrefix }: { samples: ReturnType<typeof codeSamples>; testIdPrefix: string }) {
  const blocks = [
    ['curl', samples.curl],
    ['JavaScript', samples.javascript],
    ['Python', samples.python],
  ] as const;
  return blocks.map(([lang, code]) => (
    <details key={lang} open={lang === 'curl'}>
      <summary className="cursor-pointer text-sm font-medium text-slate-800">{lang}</summary>
      <pre
        tabIndex={0}
        data-testid={`${testIdPrefix}${lang.toLowerCase()}`}
        className="mt-1 overflow-x-auto rounded bg-slate-900 p-3 font-mono text-xs text-slate-100"
      >
        {code}
      </pre>
    </details>
  ));
}
