/** Parses Stripe's form encoding: `a[b][0][c]=v` → { a: { b: [{ c: 'v' }] } }. */
export function parseStripeForm(text: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [rawKey, value] of new URLSearchParams(text)) {
    const parts = rawKey.split(/\[|\]\[|\]/).filter((p, i) => p !== '' || i === 0);
    let node: Record<string, unknown> | unknown[] = out;
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      const last = i === parts.length - 1;
      const key: string | number = Array.isArray(node) ? Number(p) : p;
      if (last) {
        (node as Record<string | number, unknown>)[key] = value;
      } else {
        const nextIsIndex = /^\d+$/.test(parts[i + 1]!);
        const existing = (node as Record<string | number, unknown>)[key];
        const child = existing ?? (nextIsIndex ? [] : {});
        (node as Record<string | number, unknown>)[key] = child;
        node = child as Record<string, unknown>;
      }
    }
  }
  return out;
}
