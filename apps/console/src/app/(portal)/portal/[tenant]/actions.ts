'use server';

import { redirect } from 'next/navigation';
import { revalidatePath } from 'next/cache';
import { assertSameOrigin, clientIp } from '@/server/shared/request';
import { runAction, str, type FormState } from '@/server/shared/action-state';
import { ServiceError } from '@/server/shared/context';
import {
  endPortalSession,
  getPortalDeps,
  portalDepsFor,
  portalGatewayUrl,
  portalHref,
  portalSite,
  portalTenant,
  requireDeveloper,
  startPortalSession,
} from '@/server/portal/next';
import { logInDeveloper, requestPasswordReset, resetPassword, signUpDeveloper } from '@/server/portal/accounts';
import { cancelSubscription, subscribeToPlan } from '@/server/portal/subscriptions';
import { createMyKey, renameMyKey, revokeMyKey, rollMyKey } from '@/server/portal/keys';
import { getPublicApi } from '@/server/portal/catalog';
import { tryThroughGateway, type TryItResult } from '@/server/portal/try-it';

// Every action re-derives the tenant from the URL slug and the developer from that tenant's
// cookie; nothing about who or where comes from the form.

export async function portalSignupAction(slug: string, prev: FormState, fd: FormData): Promise<FormState> {
  const res = await runAction(prev, fd, async () => {
    await assertSameOrigin();
    const tenant = await portalTenant(slug);
    const out = await signUpDeveloper(
      getPortalDeps(),
      tenant,
      { name: str(fd, 'name'), email: str(fd, 'email'), password: str(fd, 'password') },
      { ip: await clientIp() },
    );
    await startPortalSession(tenant, out.consumerId, out.passwordHash);
  });
  if (res.ok) redirect(portalHref(await portalSite(slug), '/keys?welcome=1'));
  return res;
}

export async function portalLoginAction(slug: string, prev: FormState, fd: FormData): Promise<FormState> {
  const res = await runAction(prev, fd, async () => {
    await assertSameOrigin();
    const tenant = await portalTenant(slug);
    const out = await logInDeveloper(
      getPortalDeps(),
      tenant,
      { email: str(fd, 'email'), password: str(fd, 'password') },
      { ip: await clientIp() },
    );
    await startPortalSession(tenant, out.consumerId, out.passwordHash);
  });
  if (res.ok) redirect(portalHref(await portalSite(slug), '/keys'));
  return res;
}

export async function portalLogoutAction(slug: string): Promise<void> {
  await assertSameOrigin();
  await endPortalSession(await portalTenant(slug));
  redirect(portalHref(await portalSite(slug)));
}

export async function portalForgotAction(slug: string, prev: FormState, fd: FormData): Promise<FormState> {
  return runAction(prev, fd, async () => {
    await assertSameOrigin();
    await requestPasswordReset(await portalDepsFor(slug), await portalTenant(slug), { email: str(fd, 'email') }, { ip: await clientIp() });
    return { message: 'If that e-mail has an account here, a reset link is on its way. It works for one hour.' };
  });
}

export async function portalResetAction(slug: string, prev: FormState, fd: FormData): Promise<FormState> {
  const res = await runAction(prev, fd, async () => {
    await assertSameOrigin();
    const tenant = await portalTenant(slug);
    const out = await resetPassword(getPortalDeps(), tenant, { token: str(fd, 'token'), password: str(fd, 'password') });
    await startPortalSession(tenant, out.consumerId, out.passwordHash);
  });
  if (res.ok) redirect(portalHref(await portalSite(slug), '/keys'));
  return res;
}

export async function subscribeAction(slug: string, prev: FormState, fd: FormData): Promise<FormState> {
  let target = '';
  const res = await runAction(prev, fd, async () => {
    await assertSameOrigin();
    const dev = await requireDeveloper(slug);
    const out = await subscribeToPlan(await portalDepsFor(slug), dev, { planId: str(fd, 'planId') });
    target = out.kind === 'checkout' ? out.url : portalHref(await portalSite(slug), '/keys?subscribed=1');
  });
  if (res.ok) redirect(target);
  return res;
}

export async function cancelAction(slug: string, prev: FormState, fd: FormData): Promise<FormState> {
  return runAction(prev, fd, async () => {
    await assertSameOrigin();
    const out = await cancelSubscription(getPortalDeps(), await requireDeveloper(slug));
    revalidatePath(`/portal/${slug}/billing`);
    return {
      message: out.immediate
        ? 'Your plan is canceled; its keys stop working now.'
        : `Your plan ends on ${out.endsAt.toISOString().slice(0, 10)}.`,
    };
  });
}

export async function createKeyAction(slug: string, prev: FormState, fd: FormData): Promise<FormState> {
  return runAction(prev, fd, async () => {
    await assertSameOrigin();
    const out = await createMyKey(await requireDeveloper(slug), { name: str(fd, 'name') ?? '' });
    revalidatePath(`/portal/${slug}/keys`);
    return { secret: out.secret, secretLabel: `Your new key "${out.key.name || out.key.prefix}"` };
  });
}

export async function renameKeyAction(slug: string, keyId: string, prev: FormState, fd: FormData): Promise<FormState> {
  return runAction(prev, fd, async () => {
    await assertSameOrigin();
    await renameMyKey(await requireDeveloper(slug), keyId, { name: str(fd, 'name') ?? '' });
    revalidatePath(`/portal/${slug}/keys`);
    return { message: 'Renamed.' };
  });
}

export async function rollKeyAction(slug: string, keyId: string, prev: FormState, fd: FormData): Promise<FormState> {
  return runAction(prev, fd, async () => {
    await assertSameOrigin();
    const hours = Number(str(fd, 'graceHours') ?? '24');
    const out = await rollMyKey(await requireDeveloper(slug), keyId, {
      graceSeconds: Number.isFinite(hours) ? Math.round(hours * 3600) : 'bad',
    });
    revalidatePath(`/portal/${slug}/keys`);
    return {
      secret: out.secret,
      secretLabel: `Replacement for ${out.previous.prefix}… (the old key works until ${out.previous.expiresAt?.toISOString().slice(0, 16).replace('T', ' ') ?? 'now'} UTC)`,
    };
  });
}

export async function revokeKeyAction(slug: string, keyId: string, prev: FormState, fd: FormData): Promise<FormState> {
  return runAction(prev, fd, async () => {
    await assertSameOrigin();
    await revokeMyKey(await requireDeveloper(slug), keyId);
    revalidatePath(`/portal/${slug}/keys`);
    return { message: 'Revoked.' };
  });
}

export type TryItState = { seq: number; ok?: boolean; message?: string; result?: TryItResult };

export async function tryItAction(slug: string, apiSlug: string, prev: TryItState, fd: FormData): Promise<TryItState> {
  const seq = (prev?.seq ?? 0) + 1;
  try {
    await assertSameOrigin();
    const tenant = await portalTenant(slug);
    const api = await getPublicApi(getPortalDeps().db, tenant, apiSlug);
    if (!api) throw new ServiceError('not_found', 'API not found');
    const body = str(fd, 'body');
    const result = await tryThroughGateway(portalGatewayUrl(slug), api.basePath, {
      method: str(fd, 'method'),
      path: str(fd, 'path'),
      key: str(fd, 'key'),
      ...(body ? { body } : {}),
    });
    return { seq, ok: true, result };
  } catch (err) {
    if (err instanceof ServiceError) return { seq, ok: false, message: err.message };
    getPortalDeps().log.error({ err }, 'try-it failed');
    return { seq, ok: false, message: 'Something went wrong on our side. Please try again.' };
  }
}
