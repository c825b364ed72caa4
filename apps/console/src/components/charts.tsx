import { formatNumber } from './ui';

type Series = { label: string; color: string; values: number[] };

/**
 * Server-rendered stacked bar chart (SVG, no client JavaScript). A visually hidden table carries
 * the same numbers for screen readers.
 */
export function BarChart({
  title,
  labels,
  series,
  height = 180,
  unit = '',
}: {
  title: string;
  labels: string[];
  series: Series[];
  height?: number;
  unit?: string;
}) {
  const width = 720;
  const pad = { l: 48, r: 8, t: 8, b: 22 };
  const totals = labels.map((_, i) => series.reduce((a, s) => a + (s.values[i] ?? 0), 0));
  const top = Math.max(0, ...totals);
  // Round the scale up to 1/2/5 × 10^n so tick labels are whole, readable numbers.
  const max = (() => {
    if (top <= 4) return 4;
    const p = 10 ** Math.floor(Math.log10(top));
    return [1, 2, 5, 10].map((m) => m * p).find((v) => v >= top) ?? 10 * p;
  })();
  const bw = (width - pad.l - pad.r) / Math.max(1, labels.length);
  const y = (v: number) => pad.t + (height - pad.t - pad.b) * (1 - v / max);
  const ticks = [0, max / 2, max];
  const every = Math.max(1, Math.ceil(labels.length / 8));
  return (
    <figure>
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={title} className="h-auto w-full">
        {ticks.map((t) => (
          <g key={t}>
            <line x1={pad.l} x2={width - pad.r} y1={y(t)} y2={y(t)} stroke="#e2e8f0" />
            <text x={pad.l - 6} y={y(t) + 4} textAnchor="end" fontSize="10" fill="#64748b">
              {formatNumber(Math.round(t))}
              {unit}
            </text>
          </g>
        ))}
        {top === 0 ? (
          <text x={(width + pad.l) / 2} y={height / 2} textAnchor="middle" fontSize="13" fill="#64748b">
            No traffic in this window yet
          </text>
        ) : null}
        {labels.map((l, i) => {
          let acc = 0;
          return (
            <g key={l}>
              {series.map((s) => {
                const v = s.values[i] ?? 0;
                const top = y(acc + v);
                const h = y(acc) - top;
                acc += v;
                return v > 0 ? (
                  <rect
                    key={s.label}
                    x={pad.l + i * bw + bw * 0.1}
                    width={Math.max(1, bw * 0.8)}
                    y={top}
                    height={Math.max(0.5, h)}
                    fill={s.color}
                  >
                    <title>{`${l}: ${s.label} ${formatNumber(v)}${unit}`}</title>
                  </rect>
                ) : null;
              })}
              {i % every === 0 ? (
                <text x={pad.l + i * bw + bw / 2} y={height - 6} textAnchor="middle" fontSize="10" fill="#64748b">
                  {l}
                </text>
              ) : null}
            </g>
          );
        })}
      </svg>
      {series.length > 1 ? (
        <figcaption className="mt-2 flex flex-wrap gap-4 text-xs text-slate-600">
          {series.map((s) => (
            <span key={s.label} className="inline-flex items-center gap-1.5">
              <span aria-hidden className="inline-block h-2.5 w-2.5 rounded-sm" style={{ background: s.color }} />
              {s.label}
            </span>
          ))}
        </figcaption>
      ) : null}
      <div className="sr-only">
        <table>
          <caption>{title}</caption>
          <thead>
            <tr>
              <th>Time</th>
              {series.map((s) => (
                <th key={s.label}>{s.label}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {labels.map((l, i) => (
              <tr key={l}>
                <td>{l}</td>
                {series.map((s) => (
                  <td key={s.label}>{s.values[i] ?? 0}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </figure>
  );
}

export function RankList({
  title,
  rows,
  empty,
}: {
  title: string;
  rows: Array<{ id: string; label: string; requests: number; errors: number }>;
  empty: string;
}) {
  const max = Math.max(1, ...rows.map((r) => r.requests));
  return (
    <div>
      <h3 className="text-sm font-semibold text-slate-900">{title}</h3>
      {rows.length === 0 ? (
        <p className="mt-2 text-sm text-slate-500">{empty}</p>
      ) : (
        <ol className="mt-3 space-y-2">
          {rows.map((r) => (
            <li key={r.id}>
              <div className="flex justify-between gap-2 text-sm">
                <span className="truncate text-slate-800">{r.label}</span>
                <span className="tabular-nums text-slate-600">
                  {formatNumber(r.requests)}
                  {r.errors ? <span className="ml-2 text-red-600">{formatNumber(r.errors)} err</span> : null}
                </span>
              </div>
              <div className="mt-1 h-1.5 rounded bg-slate-100">
                <div className="h-1.5 rounded bg-brand-500" style={{ width: `${(r.requests / max) * 100}%` }} />
              </div>
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}
