'use server';

import { revalidatePath } from 'next/cache';
import { redirect } from 'next/navigation';
import { actionSession } from '@/server/auth';
import { getRuntime } from '@/server/runtime';
import { bool, list, minor, num, numOr, runAction, str, type FormState } from '@/server/action-state';
import { createApi, createRoute, deleteApi, deleteRoute, getApi, updateApi, updateRoute } from '@/server/services/apis';
import { formFieldsFor, jwtConfigFrom, routeInputFrom } from '@/server/form-inputs';
import { createPlan, deletePlan, setPlanArchived, updatePlan } from '@/server/services/plans';
import { issueKey, revokeKey, rollKey, updateKey } from '@/server/services/keys';
import { createConsumer, updateConsumer } from '@/server/services/consumers';
import { createAccessToken, revokeAccessToken } from '@/server/services/tokens';
import { changeMemberRole, inviteMember, removeMember, revokeInvitation } from '@/server/services/members';
import { updateTenant } from '@/server/services/tenant';
import { consoleHostname, portalHostMap } from '@/server/portal/host-map';

// Every action: same-origin check and membership first (actionSession), then the service,
// which applies the role guard. Nothing here decides who may do what.

function apiInputFrom(fd: FormData) {
  const urls = list(fd, 'targetUrl');
  const weights = fd.getAll('targetWeight').map((w) => (typeof w === 'string' && w.trim() !== '' ? Number(w) : 1));
  const openapiText = str(fd, 'openapi');
  return {
    name: str(fd, 'name'),
    slug: str(fd, 'slug'),
    description: str(fd, 'description') ?? '',
    basePath: str(fd, 'basePath'),
    version: str(fd, 'version') || 'v1',
    visibility: str(fd, 'visibility') ?? 'PRIVATE',
    authMode: str(fd, 'authMode') ?? 'API_KEY',
    allowQueryKey: bool(fd, 'allowQueryKey'),
    failMode: str(fd, 'failMode') ?? 'OPEN',
    loadBalancing: str(fd, 'loadBalancing') ?? 'ROUND_ROBIN',
    connectTimeoutMs: numOr(fd, 'connectTimeoutMs', 2000),
    headersTimeoutMs: numOr(fd, 'headersTimeoutMs', 10_000),
    requestTimeoutMs: numOr(fd, 'requestTimeoutMs', 30_000),
    retries: numOr(fd, 'retries', 1),
    targets: urls.map((url, i) => ({ url, weight: Number.isFinite(weights[i]) ? weights[i] : weights[i] })),
    ...(openapiText !== undefined && openapiText.trim() !== '' ? { openapi: openapiText } : {}),
    ...(str(fd, 'openapiUrl')?.trim() ? { openapiUrl: str(fd, 'openapiUrl')!.trim() } : {}),
  };
}

async function openapiFromUpload(fd: FormData): Promise<string | undefined> {
  const file = fd.get('openapiFile');
  if (file && typeof file === 'object' && 'size' in file && file.size > 0) {
    if (file.size > 1_000_000) return ' '.repeat(1_000_001);
    return await file.text();
  }
  return undefined;
}

export async function createApiAction(slug: string, prev: FormState, fd: FormData): Promise<FormState> {
  let id = '';
  const res = await runAction(prev, fd, async () => {
    const { ctx } = await actionSession(slug);
    const input = { ...apiInputFrom(fd), jwtConfig: jwtConfigFrom(fd, str(fd, 'authMode')) };
    const uploaded = await openapiFromUpload(fd);
    const api = await createApi(ctx, uploaded !== undefined ? { ...input, openapi: uploaded } : input).catch((err: unknown) => {
      throw formFieldsFor(err);
    });
    id = api.id;
  });
  if (res.ok) redirect(`/t/${slug}/apis/${id}?created=1`);
  return res;
}

export async function updateApiAction(slug: string, apiId: string, prev: FormState, fd: FormData): Promise<FormState> {
  return runAction(prev, fd, async () => {
    const { ctx } = await actionSession(slug);
    const existing = await getApi(ctx, apiId);
    const existingKey = (existing.jwtConfig as { key?: string | null } | null)?.key ?? null;
    const input = { ...apiInputFrom(fd), jwtConfig: jwtConfigFrom(fd, str(fd, 'authMode'), existingKey) };
    const uploaded = await openapiFromUpload(fd);
    await updateApi(ctx, apiId, uploaded !== undefined ? { ...input, openapi: uploaded } : input).catch((err: unknown) => {
      throw formFieldsFor(err);
    });
    revalidatePath(`/t/${slug}/apis/${apiId}`);
    return { message: 'Saved. The gateway picks up the change within a second.' };
  });
}

export async function deleteApiAction(slug: string, apiId: string, prev: FormState, fd: FormData): Promise<FormState> {
  const res = await runAction(prev, fd, async () => {
    const { ctx } = await actionSession(slug);
    await deleteApi(ctx, apiId);
  });
  if (res.ok) redirect(`/t/${slug}/apis`);
  return res;
}

export async function createRouteAction(slug: string, apiId: string, prev: FormState, fd: FormData): Promise<FormState> {
  return runAction(prev, fd, async () => {
    const { ctx } = await actionSession(slug);
    await createRoute(ctx, apiId, routeInputFrom(fd)).catch((err: unknown) => {
      throw formFieldsFor(err);
    });
    revalidatePath(`/t/${slug}/apis/${apiId}`);
    return { message: 'Route added.' };
  });
}

export async function updateRouteAction(slug: string, apiId: string, routeId: string, prev: FormState, fd: FormData): Promise<FormState> {
  return runAction(prev, fd, async () => {
    const { ctx } = await actionSession(slug);
    await updateRoute(ctx, routeId, routeInputFrom(fd)).catch((err: unknown) => {
      throw formFieldsFor(err);
    });
    revalidatePath(`/t/${slug}/apis/${apiId}`);
    return { message: 'Route saved. The gateway picks up the change within a second.' };
  });
}

export async function deleteRouteAction(slug: string, apiId: string, routeId: string, prev: FormState, fd: FormData): Promise<FormState> {
  return runAction(prev, fd, async () => {
    const { ctx } = await actionSession(slug);
    await deleteRoute(ctx, routeId);
    revalidatePath(`/t/${slug}/apis/${apiId}`);
    return { message: 'Route removed.' };
  });
}

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
  };
}

export async function createPlanAction(slug: string, prev: FormState, fd: FormData): Promise<FormState> {
  let id = '';
  const res = await runAction(prev, fd, async () => {
    const { ctx } = await actionSession(slug);
    id = (await createPlan(ctx, planInputFrom(fd))).id;
  });
  if (res.ok) redirect(`/t/${slug}/plans/${id}?created=1`);
  return res;
}

export async function updatePlanAction(slug: string, planId: string, prev: FormState, fd: FormData): Promise<FormState> {
  return runAction(prev, fd, async () => {
    const { ctx } = await actionSession(slug);
    await updatePlan(ctx, planId, planInputFrom(fd));
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
    });
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
    });
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

export async function createConsumerAction(slug: string, prev: FormState, fd: FormData): Promise<FormState> {
  let id = '';
  const res = await runAction(prev, fd, async () => {
    const { ctx } = await actionSession(slug);
    id = (await createConsumer(ctx, { email: str(fd, 'email'), name: str(fd, 'name') })).id;
  });
  if (res.ok) redirect(`/t/${slug}/consumers/${id}?created=1`);
  return res;
}

export async function setConsumerStatusAction(
  slug: string,
  consumerId: string,
  status: string,
  prev: FormState,
  fd: FormData,
): Promise<FormState> {
  return runAction(prev, fd, async () => {
    const { ctx } = await actionSession(slug);
    await updateConsumer(ctx, consumerId, { status });
    revalidatePath(`/t/${slug}/consumers`, 'layout');
    return { message: `Consumer ${status.toLowerCase()}.` };
  });
}

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

export async function updateTenantAction(slug: string, prev: FormState, fd: FormData): Promise<FormState> {
  return runAction(prev, fd, async () => {
    const { ctx } = await actionSession(slug);
    await updateTenant(
      ctx,
      {
        name: str(fd, 'name'),
        allowPrivateTargets: bool(fd, 'allowPrivateTargets'),
        requireDeveloperApproval: bool(fd, 'requireDeveloperApproval'),
        portalHost: str(fd, 'portalHost') ?? '',
      },
      { reservedHosts: [consoleHostname()] },
    );
    // This process serves the new host at once; other console instances within the map's TTL.
    portalHostMap().invalidate();
    revalidatePath(`/t/${slug}`, 'layout');
    return { message: 'Settings saved.' };
  });
}

export type TestCallResult = FormState & {
  response?: { status: number; headers: Array<[string, string]>; body: string; url: string; ms: number };
};

/**
 * Calls the API through the tenant's gateway host (operator-configured, never user-supplied)
 * with a key the user pastes, and shows the response.
 */
export async function testCallAction(slug: string, apiId: string, prev: TestCallResult, fd: FormData): Promise<TestCallResult> {
  let response: TestCallResult['response'];
  const res = await runAction(prev, fd, async () => {
    const { ctx, tenant } = await actionSession(slug);
    const { getApi } = await import('@/server/services/apis');
    const { ServiceError } = await import('@/server/services/context');
    const api = await getApi(ctx, apiId);
    const method = str(fd, 'method') ?? 'GET';
    if (!['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'].includes(method))
      throw new ServiceError('unprocessable', 'unsupported method', { method: 'is not supported' });
    const path = (str(fd, 'path') ?? '/').trim();
    if (!/^\/[\x21-\x7e]{0,512}$/.test(path))
      throw new ServiceError('unprocessable', 'path must start with / and contain no spaces', { path: 'must start with /' });
    let key = (str(fd, 'key') ?? '').trim();
    if (key.length > 200) throw new ServiceError('unprocessable', 'key is too long', { key: 'is too long' });
    // No key pasted: issue a short-lived internal test key, wait until the gateway has it, and
    // revoke it after the call, so the button works without anyone handling a secret.
    let tempKeyId: string | null = null;
    if (!key && api.authMode !== 'NONE') {
      const issued = await issueKey(ctx, {
        name: 'Console test call',
        env: 'test',
        expiresAt: new Date(Date.now() + 10 * 60_000).toISOString(),
        apiIds: [api.id],
      });
      key = issued.secret;
      tempKeyId = issued.key.id;
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline) {
        const row = await ctx.db.outboxEvent.findFirst({
          where: { kind: 'key', payload: { path: ['keyId'], equals: tempKeyId } },
          select: { publishedAt: true },
        });
        if (row?.publishedAt) break;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const { gatewayUrlFor } = await import('@/env');
    const url = `${gatewayUrlFor(getRuntime().config, tenant.slug)}${api.basePath === '/' ? '' : api.basePath}${path}`;
    try {
      const { callGateway } = await import('@/server/gateway-call');
      const r = await callGateway(url, method, key ? { authorization: `Bearer ${key}` } : {});
      response = { ...r, body: r.body.slice(0, 4000) };
      if (tempKeyId) await revokeKey(ctx, tempKeyId);
    } catch (err) {
      if (tempKeyId) await revokeKey(ctx, tempKeyId).catch(() => undefined);
      throw new ServiceError(
        'bad_gateway',
        `the gateway at ${url} did not answer: ${(err as Error).name === 'TimeoutError' ? 'timed out after 10 s' : 'connection failed'}`,
      );
    }
  });
  return { ...res, response };
}
