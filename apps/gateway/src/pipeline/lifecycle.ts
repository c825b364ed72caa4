import { lifecycleHeaders, type ApiLifecycle } from '@tollgate/policy';

const lists = new WeakMap<ApiLifecycle, string[]>();

/**
 * `Deprecation`, `Sunset` and `Link: rel="deprecation"` for an API with a lifecycle (ADR 0028),
 * built once per published lifecycle object and appended to relayed responses. The gateway's
 * announcement replaces whatever the upstream said in those headers.
 */
export function appendLifecycleHeaders(list: string[], lifecycle: ApiLifecycle): void {
  let extra = lists.get(lifecycle);
  if (!extra) {
    extra = Object.entries(lifecycleHeaders(lifecycle)).flat();
    lists.set(lifecycle, extra);
  }
  for (let i = 0; i < extra.length; i += 2) {
    const name = extra[i]!;
    // Drop the upstream's own `deprecation`/`sunset` so clients see one answer (its Links stay).
    if (name !== 'link') for (let j = list.length - 2; j >= 0; j -= 2) if (list[j]!.toLowerCase() === name) list.splice(j, 2);
    list.push(name, extra[i + 1]!);
  }
}
