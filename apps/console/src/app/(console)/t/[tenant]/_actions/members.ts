'use server';

// Server actions for members and invitations.
import { revalidatePath } from 'next/cache';
import { actionSession } from '@/server/console/auth';
import { getRuntime } from '@/server/shared/runtime';
import { runAction, str, type FormState } from '@/server/shared/action-state';
import { changeMemberRole, inviteMember, removeMember, revokeInvitation } from '@/server/console/members';

// Every action: same-origin check and membership first (actionSession), then the service,
// which applies the role guard. Nothing here decides who may do what.

export async function inviteMemberAction(slug: string, prev: FormState, fd: FormData): Promise<FormState> {
  return runAction(prev, fd, async () => {
    const { ctx } = await actionSession(slug);
    const inv = await inviteMember(ctx, { email: str(fd, 'email'), role: str(fd, 'role') ?? 'DEVELOPER' }, getRuntime().config.consoleUrl);
    revalidatePath(`/t/${slug}/settings`);
    return { secret: inv.link, secretLabel: `Invitation link for ${inv.email} (also e-mailed)` };
  });
}

export async function changeRoleAction(slug: string, membershipId: string, prev: FormState, fd: FormData): Promise<FormState> {
  return runAction(prev, fd, async () => {
    const { ctx } = await actionSession(slug);
    await changeMemberRole(ctx, membershipId, { role: str(fd, 'role') });
    revalidatePath(`/t/${slug}/settings`);
    return { message: 'Role changed.' };
  });
}

export async function removeMemberAction(slug: string, membershipId: string, prev: FormState, fd: FormData): Promise<FormState> {
  return runAction(prev, fd, async () => {
    const { ctx } = await actionSession(slug);
    await removeMember(ctx, membershipId);
    revalidatePath(`/t/${slug}/settings`);
    return { message: 'Member removed.' };
  });
}

export async function revokeInvitationAction(slug: string, invitationId: string, prev: FormState, fd: FormData): Promise<FormState> {
  return runAction(prev, fd, async () => {
    const { ctx } = await actionSession(slug);
    await revokeInvitation(ctx, invitationId);
    revalidatePath(`/t/${slug}/settings`);
    return { message: 'Invitation revoked.' };
  });
}
