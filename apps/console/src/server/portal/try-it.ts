import { z } from 'zod';
import { ServiceError } from '../services/context';
import { parseInput } from '../services/validation';

export const TryItInput = z
  .object({
    method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], { error: 'must be GET, POST, PUT, PATCH or DELETE' }),
    // Below the API's base path: no scheme, no host, no dot segments, no backslashes.
    path: z
      .string({ error: 'must be text' })
      .max(2000, 'must be at most 2000 characters')
      .regex(/^\/[A-Za-z0-9\-._~%!$&'()*+,;=:@/?]*$/, 'must start with / and contain only URL characters')
      .refine((p) => !/(^|\/)\.\.?(\/|$|\?)/.test(p) && !p.startsWith('//'), 'must not contain . or .. segments'),
    key: z.string({ error: 'must be text' }).regex(/^tg_(live|test)_[A-Za-z0-9]{20,100}$/, 'must be one of your tg_… keys'),
    body: z.string({ error: 'must be text' }).max(65_536, 'must be at most 64 KiB').optional(),
  })
  .strict();

export type TryItResult = { status: number; durationMs: number; headers: Array<[string, string]>; body: string; truncated: boolean };

const SHOWN_HEADERS = /^(content-type|retry-after|ratelimit|ratelimit-policy|x-ratelimit-.*|x-tollgate-request-id|x-request-id)$/i;
const MAX_BODY = 65_536;

/**
 * Sends one request through the tenant's gateway and reports the answer. The URL is always the
 * gateway's for this tenant plus the API's base path; nothing in the input picks the host.
 * `*.localhost` gateway hosts (local installs) are dialled on 127.0.0.1 with the Host header set,
 * since the system resolver does not know them.
 */
export async function tryThroughGateway(gatewayBase: string, basePath: string, input: unknown, timeoutMs = 10_000): Promise<TryItResult> {
  const data = parseInput(TryItInput, input);
  const base = new URL(gatewayBase);
  const target = new URL(`${base.origin}${basePath === '/' ? '' : basePath}${data.path}`);
  const headers: Record<string, string> = { authorization: `Bearer ${data.key}`, accept: 'application/json, */*' };
  if (base.hostname.endsWith('.localhost')) {
    headers.host = base.host;
    target.hostname = '127.0.0.1';
  }
  const hasBody = data.body !== undefined && data.body !== '' && data.method !== 'GET' && data.method !== 'DELETE';
  if (hasBody) headers['content-type'] = 'application/json';
  const started = performance.now();
  let res: Response;
  try {
    res = await fetch(target, { method: data.method, headers, ...(hasBody ? { body: data.body } : {}), redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
  } catch {
    throw new ServiceError('bad_gateway', 'the gateway did not answer; try again in a moment');
  }
  const reader = res.body?.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let truncated = false;
  if (reader) {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
      if (size > MAX_BODY) {
        truncated = true;
        await reader.cancel();
        break;
      }
    }
  }
  const body = Buffer.concat(chunks).subarray(0, MAX_BODY).toString('utf8');
  return {
    status: res.status,
    durationMs: Math.round(performance.now() - started),
    headers: [...res.headers.entries()].filter(([k]) => SHOWN_HEADERS.test(k)),
    body,
    truncated,
  };
}
