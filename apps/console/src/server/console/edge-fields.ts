// Edge policies of issue 19 (ADR 0025) as the control plane takes them: the same zod schemas the
// snapshot is validated with (so "*" with credentials or a bad CIDR is refused when it is
// saved, not when it is published), and how a JSON column is written (null clears it).
import { z } from 'zod';
import { Prisma } from '@tollgate/db';
import { CircuitBreakerPolicy, CorsPolicy, IpRules, Scopes } from '@tollgate/policy';

export const CorsInput = CorsPolicy;
export const IpRulesInput = IpRules;
export const CircuitBreakerInput = CircuitBreakerPolicy;
export const ScopesInput = z.array(Scopes.element, { error: 'must be a list' }).max(64, 'at most 64 scopes');
export const SharedRateLimitInput = z.object({
  limit: z.number({ error: 'must be a number' }).int().min(1).max(1_000_000),
  windowSeconds: z.number({ error: 'must be a number' }).int().min(1).max(86_400),
  algorithm: z.enum(['sliding_window', 'gcra', 'token_bucket', 'fixed_window']).default('sliding_window'),
});

/** A JSON column's write: absent = unchanged, null = cleared (SQL NULL), else the value. */
export function jsonColumn(v: unknown): Prisma.InputJsonValue | typeof Prisma.DbNull | undefined {
  if (v === undefined) return undefined;
  return v === null ? Prisma.DbNull : (v as Prisma.InputJsonValue);
}

/** The same, for a create: null is simply absent. */
export function jsonCreate(v: unknown): Prisma.InputJsonValue | undefined {
  return v === null || v === undefined ? undefined : (v as Prisma.InputJsonValue);
}

/** Dedupes, keeps order. */
export const uniq = <T>(xs: readonly T[]): T[] => [...new Set(xs)];
