'use server';

// Server actions for admin API tokens.
import { revalidatePath } from 'next/cache';
import { actionSession } from '@/server/console/auth';
import { num, runAction, str, type FormState } from '@/server/shared/action-state';
import { createAccessToken, revokeAccessToken } from '@/server/console/tokens';

// Every action: same-origin check and membership first (actionSession), then the service,
// which applies the role guard. Nothing here decides who may do what.

export async function createTokenAction(slug: string, prev: FormState, fd: FormData): Promise<FormState> {
  return runAction(prev, fd, async () => {
    const { ctx } = await actionSession(slug);
    const days = num(fd, 'expiresInDays');
    const { secret } = await createAccessToken(ctx, {
      name: str(fd, 'name'),
      role: str(fd, 'role') ?? 'ADMIN',
      expiresInDays: days === undefined ? 90 : days,
    });
    revalidatePath(`/t/${slug}/settings`);
    return { secret, secretLabel: 'Your access token' };
  });
}

export async function revokeTokenAction(slug: string, tokenId: string, prev: FormState, fd: FormData): Promise<FormState> {
  return runAction(prev, fd, async () => {
    const { ctx } = await actionSession(slug);
    await revokeAccessToken(ctx, tokenId);
    revalidatePath(`/t/${slug}/settings`);
    return { message: 'Token revoked.' };
  });
}
