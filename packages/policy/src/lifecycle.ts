import { z } from 'zod';

/**
 * An API version's end of life (ADR 0028): every response carries `Deprecation` (RFC 9745,
 * the date it was or will be deprecated) and `Sunset` (RFC 8594, when it stops answering)
 * as soon as they are set; `link` is announced as `Link: <…>; rel="deprecation"`. Epoch ms.
 */
export const ApiLifecycle = z.object({
  deprecatedAt: z.number().int().nullable(),
  sunsetAt: z.number().int().nullable(),
  link: z.url().nullable(),
});
export type ApiLifecycle = z.infer<typeof ApiLifecycle>;

/** The response headers a lifecycle adds (RFC 9745 §2: `@epoch-seconds`; RFC 8594: an HTTP-date). */
export function lifecycleHeaders(l: ApiLifecycle): Record<string, string> {
  const h: Record<string, string> = {};
  if (l.deprecatedAt !== null) h['deprecation'] = `@${Math.floor(l.deprecatedAt / 1000)}`;
  if (l.sunsetAt !== null) h['sunset'] = new Date(l.sunsetAt).toUTCString();
  if (l.link !== null && /^[\x21-\x7e]+$/.test(l.link) && !/[<>]/.test(l.link))
    h['link'] = `<${l.link}>; rel="deprecation"; type="text/html"`;
  return h;
}
