'use server';

// Server actions for the API page's test call.
import { actionSession } from '@/server/console/auth';
import { getRuntime } from '@/server/shared/runtime';
import { runAction, str, type FormState } from '@/server/shared/action-state';
import { issueKey, revokeKey } from '@/server/console/keys';

// Every action: same-origin check and membership first (actionSession), then the service,
// which applies the role guard. Nothing here decides who may do what.

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
    const { getApi } = await import('@/server/console/apis');
    const { ServiceError } = await import('@/server/shared/context');
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
      const { callGateway } = await import('@/server/console/gateway-call');
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
