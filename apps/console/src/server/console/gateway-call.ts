import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';

export type GatewayResponse = { status: number; headers: Array<[string, string]>; body: string; url: string; ms: number };

const MAX_BODY = 64 * 1024;

// RFC 6761: every *.localhost name is loopback. The system resolver here may not know that,
// and the gateway's per-tenant host names are `{tenant}.localhost` in development.
function lookup(
  hostname: string,
  options: object,
  cb: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
) {
  if (hostname === 'localhost' || hostname.endsWith('.localhost')) {
    const all = (options as { all?: boolean }).all;
    return all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4);
  }
  return dnsLookup(hostname, options, cb as never);
}

/**
 * One request to the tenant's gateway (an operator-configured URL, never a user-supplied host).
 * Reads at most 64 KB of the answer and gives up after `timeoutMs`.
 */
export function callGateway(url: string, method: string, headers: Record<string, string>, timeoutMs = 10_000): Promise<GatewayResponse> {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? https : http;
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = mod.request(u, { method, headers, lookup, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size < MAX_BODY) chunks.push(c);
        size += c.length;
      });
      res.on('end', () => {
        const hdrs: Array<[string, string]> = [];
        for (const [k, v] of Object.entries(res.headers)) {
          if (k === 'set-cookie' || v === undefined) continue;
          hdrs.push([k, Array.isArray(v) ? v.join(', ') : v]);
        }
        resolve({
          status: res.statusCode ?? 0,
          headers: hdrs.slice(0, 40),
          body: Buffer.concat(chunks).subarray(0, MAX_BODY).toString('utf8'),
          url,
          ms: Date.now() - started,
        });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { name: 'TimeoutError' })));
    req.on('error', reject);
    req.end();
  });
}
