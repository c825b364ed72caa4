import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { z } from 'zod';
import { ServiceError } from '../shared/context';
import { parseInput } from '../shared/validation';

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
  let res: { status: number; headers: Array<[string, string]>; body: Buffer; truncated: boolean };
  try {
    res = await send(target, data.method, headers, hasBody ? data.body! : null, timeoutMs);
  } catch {
    throw new ServiceError('bad_gateway', 'the gateway did not answer; try again in a moment');
  }
  return {
    status: res.status,
    durationMs: Math.round(performance.now() - started),
    headers: res.headers.filter(([k]) => SHOWN_HEADERS.test(k)),
    body: res.body.toString('utf8'),
    truncated: res.truncated,
  };
}

// node:http rather than fetch: fetch ignores a Host header, and local gateways are addressed by it.
function send(url: URL, method: string, headers: Record<string, string>, body: string | null, timeoutMs: number) {
  return new Promise<{ status: number; headers: Array<[string, string]>; body: Buffer; truncated: boolean }>((resolve, reject) => {
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method, headers, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let truncated = false;
      res.on('data', (c: Buffer) => {
        if (truncated) return;
        size += c.length;
        chunks.push(c);
        if (size > MAX_BODY) {
          truncated = true;
          res.destroy();
          finish();
        }
      });
      const finish = () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: Object.entries(res.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : String(v ?? '')] as [string, string]),
          body: Buffer.concat(chunks).subarray(0, MAX_BODY),
          truncated,
        });
      res.on('end', finish);
      res.on('error', (err) => (truncated ? undefined : reject(err)));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body ?? undefined);
  });
}
