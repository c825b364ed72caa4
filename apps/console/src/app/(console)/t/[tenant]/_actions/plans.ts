'use server';

// Server actions for plans.
import { revalidatePath } from 'next/cache';
import { redirect } from 'next/navigation';
import { actionSession } from '@/server/console/auth';
import { bool, list, minor, num, numOr, runAction, str, type FormState } from '@/server/shared/action-state';
import { createPlan, deletePlan, setPlanArchived, updatePlan } from '@/server/console/plans';
import { ipRulesFrom } from '@/server/console/edge-form-inputs';
import { formFieldsFor } from '@/server/console/form-inputs';

// Every action: same-origin check and membership first (actionSession), then the service,
// which applies the role guard. Nothing here decides who may do what.

/** "10000 @ 0.01" lines → tiers; anything unparseable is passed on as text for validation to name. */
function tiersFrom(fd: FormData): unknown {
  const text = (str(fd, 'tiers') ?? '').trim();
  if (!text) return null;
  const tiers = [];
  for (const line of text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean)) {
    const m = /^(\d{1,10}|\*)\s*@\s*(\d{1,7}(?:\.\d{1,2})?)$/.exec(line);
    if (!m) return text;
    tiers.push({ upTo: m[1] === '*' ? null : Number(m[1]), unitPriceMinor: Math.round(Number(m[2]) * 100), flatMinor: 0 });
  }
  return tiers;
}

function planInputFrom(fd: FormData) {
  return {
    name: str(fd, 'name'),
    slug: str(fd, 'slug'),
    description: str(fd, 'description') ?? '',
    public: bool(fd, 'public'),
    rateLimit: num(fd, 'rateLimit') ?? null,
    rateWindowSeconds: numOr(fd, 'rateWindowSeconds', 1),
    rateAlgorithm: str(fd, 'rateAlgorithm') ?? 'SLIDING_WINDOW',
    monthlyQuota: num(fd, 'monthlyQuota') ?? null,
    quotaMode: str(fd, 'quotaMode') ?? 'HARD_CAP',
    flatFeeMinor: minor(fd, 'flatFee') ?? 0,
    includedRequests: numOr(fd, 'includedRequests', 0),
    overageUnitPriceMinor: minor(fd, 'overagePrice') ?? 0,
    overageBlockSize: numOr(fd, 'overageBlockSize', 1),
    trialDays: numOr(fd, 'trialDays', 0),
    apiIds: list(fd, 'apiIds'),
    tiers: tiersFrom(fd),
    ...(fd.has('ipAllow') ? { ipRules: ipRulesFrom(fd) } : {}),
  };
}

export async function createPlanAction(slug: string, prev: FormState, fd: FormData): Promise<FormState> {
  let id = '';
  const res = await runAction(prev, fd, async () => {
    const { ctx } = await actionSession(slug);
    id = (
      await createPlan(ctx, planInputFrom(fd)).catch((err: unknown) => {
        throw formFieldsFor(err);
      })
    ).id;
  });
  if (res.ok) redirect(`/t/${slug}/plans/${id}?created=1`);
  return res;
}

export async function updatePlanAction(slug: string, planId: string, prev: FormState, fd: FormData): Promise<FormState> {
  return runAction(prev, fd, async () => {
    const { ctx } = await actionSession(slug);
    await updatePlan(ctx, planId, planInputFrom(fd)).catch((err: unknown) => {
      throw formFieldsFor(err);
    });
    revalidatePath(`/t/${slug}/plans/${planId}`);
    return { message: 'Plan saved.' };
  });
}

export async function archivePlanAction(
  slug: string,
  planId: string,
  archived: boolean,
  prev: FormState,
  fd: FormData,
): Promise<FormState> {
  return runAction(prev, fd, async () => {
    const { ctx } = await actionSession(slug);
    await setPlanArchived(ctx, planId, archived);
    revalidatePath(`/t/${slug}/plans/${planId}`);
    return { message: archived ? 'Plan archived: closed to new subscribers.' : 'Plan restored.' };
  });
}

export async function deletePlanAction(slug: string, planId: string, prev: FormState, fd: FormData): Promise<FormState> {
  let deleted = false;
  const res = await runAction(prev, fd, async () => {
    const { ctx } = await actionSession(slug);
    const r = await deletePlan(ctx, planId);
    deleted = r.deleted;
    revalidatePath(`/t/${slug}/plans/${planId}`);
    return { message: r.archived ? 'This plan has subscribers, so it was archived instead of deleted.' : 'Plan deleted.' };
  });
  if (res.ok && deleted) redirect(`/t/${slug}/plans`);
  return res;
}
