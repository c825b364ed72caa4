import { z } from 'zod';

/** Messages on the `tg:events` channel: small, idempotent announcements, never the data. */
export const TgEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('policy.updated'), tenantId: z.string(), version: z.number().int() }),
  z.object({ type: z.literal('tenant.deleted'), tenantId: z.string() }),
  z.object({ type: z.literal('key.updated'), hash: z.string().regex(/^[0-9a-f]{64}$/) }),
  z.object({ type: z.literal('key.revoked'), hash: z.string().regex(/^[0-9a-f]{64}$/) }),
]);
export type TgEvent = z.infer<typeof TgEvent>;

export function encodeEvent(event: TgEvent): string {
  return JSON.stringify(TgEvent.parse(event));
}

/** Parses a channel message; anything unreadable is `null`, never a throw. */
export function decodeEvent(raw: string): TgEvent | null {
  try {
    const res = TgEvent.safeParse(JSON.parse(raw));
    return res.success ? res.data : null;
  } catch {
    return null;
  }
}
