'use server';

// Server actions for APIs and their routes.
import { revalidatePath } from 'next/cache';
import { redirect } from 'next/navigation';
import { actionSession } from '@/server/console/auth';
import { bool, FixableError, fixRequested, list, numOr, runAction, str, type FormState } from '@/server/shared/action-state';
import { ServiceError, type ServiceContext } from '@/server/shared/context';
import { updateTenant } from '@/server/console/tenant';
import { consoleHostname } from '@/server/shared/portal-host-map';
import { createApi, deleteApi, getApi, updateApi } from '@/server/console/apis';
import { createRoute, deleteRoute, updateRoute } from '@/server/console/routes';
import { formFieldsFor, jwtConfigFrom, routeInputFrom } from '@/server/console/form-inputs';
import { edgePolicyInputFrom } from '@/server/console/edge-form-inputs';
import { introspectionConfigFrom, jwtConsumerClaimFrom, lifecycleFrom } from '@/server/console/form-inputs-oauth';

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

/** JWT (with its consumer claim), introspection and deprecation fields of the form (ADR 0028). */
function oauthInputFrom(fd: FormData, jwt: ReturnType<typeof jwtConfigFrom>) {
  const introspectionConfig = introspectionConfigFrom(fd, str(fd, 'authMode'));
  return {
    jwtConfig: jwt ? { ...jwt, consumerClaim: jwtConsumerClaimFrom(fd) } : jwt,
    ...(introspectionConfig !== undefined ? { introspectionConfig } : {}),
    ...lifecycleFrom(fd),
  };
}

const ALLOW_PRIVATE = 'allow-private-targets';

/**
 * A loopback or private upstream is refused until the workspace allows private targets. Rather
 * than send the owner to Settings (and lose the form), the error offers to allow it here: the
 * button resubmits the same form with `fix=allow-private-targets`.
 */
async function applyPrivateTargetsFix(ctx: ServiceContext, fd: FormData) {
  if (fixRequested(fd, ALLOW_PRIVATE)) {
    await updateTenant(ctx, { allowPrivateTargets: true }, { reservedHosts: [consoleHostname()] });
    revalidatePath('/t', 'layout');
  }
}

function offerPrivateTargetsFix(ctx: ServiceContext, err: unknown): unknown {
  const mapped = formFieldsFor(err);
  if (!(mapped instanceof ServiceError) || !/allow private targets/i.test(mapped.message)) return mapped;
  if (ctx.role !== 'OWNER') {
    return new ServiceError(
      mapped.code,
      mapped.message,
      mapped.fields &&
        Object.fromEntries(
          Object.entries(mapped.fields).map(([k, v]) => [
            k,
            v.replace(/allow private targets in settings/i, 'ask a workspace owner to allow private targets'),
          ]),
        ),
    );
  }
  return new FixableError(mapped, {
    value: ALLOW_PRIVATE,
    label: 'Allow private targets for this workspace and save',
    hint: 'Lets every API in this workspace call hosts on private networks; you can turn it off in Settings.',
  });
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
    await applyPrivateTargetsFix(ctx, fd);
    const input = { ...apiInputFrom(fd), ...oauthInputFrom(fd, jwtConfigFrom(fd, str(fd, 'authMode'))) };
    const uploaded = await openapiFromUpload(fd);
    const api = await createApi(ctx, uploaded !== undefined ? { ...input, openapi: uploaded } : input).catch((err: unknown) => {
      throw offerPrivateTargetsFix(ctx, err);
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
    await applyPrivateTargetsFix(ctx, fd);
    const input = { ...apiInputFrom(fd), ...oauthInputFrom(fd, jwtConfigFrom(fd, str(fd, 'authMode'), existingKey)) };
    const uploaded = await openapiFromUpload(fd);
    await updateApi(ctx, apiId, uploaded !== undefined ? { ...input, openapi: uploaded } : input).catch((err: unknown) => {
      throw offerPrivateTargetsFix(ctx, err);
    });
    revalidatePath(`/t/${slug}/apis/${apiId}`);
    return { message: 'Saved. The gateway picks up the change within a second.' };
  });
}

/** CORS, address rules, the per-address limit and the circuit breaker (ADR 0025): their own form. */
export async function updateApiEdgeAction(slug: string, apiId: string, prev: FormState, fd: FormData): Promise<FormState> {
  return runAction(prev, fd, async () => {
    const { ctx } = await actionSession(slug);
    await updateApi(ctx, apiId, edgePolicyInputFrom(fd)).catch((err: unknown) => {
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
