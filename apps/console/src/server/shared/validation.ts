import { z } from 'zod';
import { ServiceError } from './context';

// Names are shown in the console, the portal and other people's logs: plain text only.
const UNSAFE_TEXT = /[<>\u0000-\u001f\u007f\u2028\u2029]/;

export const SafeName = (max = 100) =>
  z
    .string({ error: 'must be text' })
    .trim()
    .min(1, 'is required')
    .max(max, `must be at most ${max} characters`)
    .refine((s) => !UNSAFE_TEXT.test(s), 'must not contain <, > or control characters');

export const SafeText = (max = 2000) =>
  z
    .string({ error: 'must be text' })
    .trim()
    .max(max, `must be at most ${max} characters`)
    .refine((s) => !/[<>\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(s), 'must not contain < or >');

export const Slug = z
  .string({ error: 'must be text' })
  .trim()
  .toLowerCase()
  .min(2, 'must be at least 2 characters')
  .max(48, 'must be at most 48 characters')
  .regex(/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/, 'may use a-z, 0-9 and inner dashes only');

export const Id = (prefix: string) =>
  z.string({ error: 'must be an id' }).regex(new RegExp(`^${prefix}_[0-9a-z]{26}$`), `must be a ${prefix}_… id`);

/** Validates service input; a failure is a 422 naming each bad field. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.infer<S> {
  const res = schema.safeParse(input);
  if (res.success) return res.data;
  const fields: Record<string, string> = {};
  for (const issue of res.error.issues) {
    const key = issue.path.join('.') || '_';
    if (!fields[key]) fields[key] = issue.message;
  }
  const summary = Object.entries(fields)
    .slice(0, 5)
    .map(([k, m]) => (k === '_' ? m : `${k} ${m}`))
    .join('; ');
  throw new ServiceError('unprocessable', `invalid input: ${summary}`, fields);
}

/** Turns a unique-constraint violation into a 409 instead of a 500. */
export function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: string }).code === 'P2002';
}

export const Pagination = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(25),
  cursor: z
    .string()
    .max(64)
    .regex(/^[a-z]{2,3}_[0-9a-z]{26}$/, 'is not a valid cursor')
    .optional(),
});
export type Pagination = z.infer<typeof Pagination>;

export type Page<T> = { data: T[]; nextCursor: string | null };

/** Cursor pages over ULID-ordered ids: newest first, stable while rows are added. */
export function pageArgs(p: Pagination) {
  return {
    take: p.limit + 1,
    orderBy: { id: 'desc' as const },
    ...(p.cursor ? { where: { id: { lt: p.cursor } } } : {}),
  };
}

export function toPage<T extends { id: string }>(rows: T[], limit: number): Page<T> {
  const more = rows.length > limit;
  const data = more ? rows.slice(0, limit) : rows;
  return { data, nextCursor: more ? data[data.length - 1]!.id : null };
}
