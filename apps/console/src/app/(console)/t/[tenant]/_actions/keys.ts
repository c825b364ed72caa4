'use server';

// Server actions for API keys.
import { revalidatePath } from 'next/cache';
import { actionSession } from '@/server/console/auth';
import { list, num, runAction, str, type FormState } from '@/server/shared/action-state';
import { issueKey, revokeKey, rollKey, updateKey } from '@/server/console/keys';
import { entries, ipRulesFrom } from '@/server/console/edge-form-inputs';
import { formFieldsFor } from '@/server/console/form-inputs';

/** Scopes and address rules (ADR 0025), when the form carries them. */
const edgeFrom = (fd: FormData) => ({
  ...(fd.has('scopes') ? { scopes: entries(fd, 'scopes') } : {}),
  ...(fd.has('ipAllow') ? { ipRules: ipRulesFrom(fd) } : {}),
});
const named = (err: unknown) => {
  throw formFieldsFor(err);
};

// Every action: same-origin check and membership first (actionSession), then the service,
// which applies the role guard. Nothing here decides who may do what.

export async function issueKeyAction(slug: string, prev: FormState, fd: FormData): Promise<FormState> {
  return runAction(prev, fd, async () => {
    const { ctx } = await actionSession(slug);
    const expires = str(fd, 'expiresAt');
    const { secret } = await issueKey(ctx, {
      name: str(fd, 'name') ?? '',
      env: str(fd, 'env') ?? 'live',
      ...(str(fd, 'planId') ? { planId: str(fd, 'planId') } : {}),
      ...(str(fd, 'consumerId') ? { consumerId: str(fd, 'consumerId') } : {}),
      ...(expires ? { expiresAt: expires } : {}),
      rateLimitOverride: num(fd, 'rateLimitOverride') ?? null,
      rateWindowOverride: num(fd, 'rateWindowOverride') ?? null,
      quotaOverride: num(fd, 'quotaOverride') ?? null,
      apiIds: list(fd, 'apiIds'),
      ...edgeFrom(fd),
    }).catch(named);
    revalidatePath(`/t/${slug}/keys`);
    if (str(fd, 'consumerId')) revalidatePath(`/t/${slug}/consumers/${str(fd, 'consumerId')}`);
    return { secret, secretLabel: 'Your new API key' };
  });
}

export async function updateKeyAction(slug: string, keyId: string, prev: FormState, fd: FormData): Promise<FormState> {
  return runAction(prev, fd, async () => {
    const { ctx } = await actionSession(slug);
    const expires = str(fd, 'expiresAt');
    await updateKey(ctx, keyId, {
      name: str(fd, 'name') ?? '',
      expiresAt: expires ? expires : null,
      rateLimitOverride: num(fd, 'rateLimitOverride') ?? null,
      rateWindowOverride: num(fd, 'rateWindowOverride') ?? null,
      quotaOverride: num(fd, 'quotaOverride') ?? null,
      ...edgeFrom(fd),
    }).catch(named);
    revalidatePath(`/t/${slug}/keys`);
    return { message: 'Key updated.' };
  });
}

export async function rollKeyAction(slug: string, keyId: string, prev: FormState, fd: FormData): Promise<FormState> {
  return runAction(prev, fd, async () => {
    const { ctx } = await actionSession(slug);
    const hours = num(fd, 'graceHours');
    const graceSeconds = typeof hours === 'number' ? Math.round(hours * 3600) : hours === null || hours === undefined ? 86_400 : hours;
    const { secret } = await rollKey(ctx, keyId, { graceSeconds });
    revalidatePath(`/t/${slug}/keys`);
    return { secret, secretLabel: 'The replacement key' };
  });
}

export async function revokeKeyAction(slug: string, keyId: string, prev: FormState, fd: FormData): Promise<FormState> {
  return runAction(prev, fd, async () => {
    const { ctx } = await actionSession(slug);
    await revokeKey(ctx, keyId);
    revalidatePath(`/t/${slug}/keys`);
    return { message: 'Key revoked. Gateways refuse it within a second.' };
  });
}
