import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { addressAllowed, guardedLookup } from '../proxy/target-guard';
import type { Target } from '../proxy/upstreams';

/** Longest upstream response head accepted for a handshake. */
const MAX_HEAD_BYTES = 16 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');

export type UpstreamHandshake =
  | {
      ok: true;
      socket: Socket;
      /** Upstream response headers, lower-case names, as a flat `[name, value, …]` list. */
      headers: string[];
      /** Bytes that came after the response head (the upstream's first frames). */
      rest: Buffer;
    }
  | { ok: false; code: 'bad_gateway' | 'gateway_timeout'; message: string; status: number | null };

export type HandshakeOptions = {
  /** Target prefix + canonical path + query. */
  path: string;
  /** The client's headers as the upstream may see them (hop-by-hop already dropped). */
  headers: string[];
  connectTimeoutMs: number;
  headersTimeoutMs: number;
};

/**
 * Opens a connection to the target (the same connect-time address check as every upstream
 * connection: proxy/target-guard.ts), sends the handshake as HTTP/1.1 and reads the response
 * head. Only a 101 switching to websocket is a success; its socket is handed over paused.
 */
export function upstreamHandshake(target: Target, o: HandshakeOptions): Promise<UpstreamHandshake> {
  return new Promise((resolve) => {
    const url = new URL(target.origin);
    const secure = url.protocol === 'https:';
    const hostname = url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(url.port) || (secure ? 443 : 80);
    const fail = (code: 'bad_gateway' | 'gateway_timeout', message: string, status: number | null = null) => {
      clearTimeout(timer);
      socket?.destroy();
      resolve({ ok: false, code, message, status });
    };
    let socket: Socket | null = null;
    const timer = setTimeout(
      () => fail('gateway_timeout', 'the upstream did not answer the WebSocket handshake in time'),
      o.connectTimeoutMs + o.headersTimeoutMs,
    );
    if (isIP(hostname) !== 0 && !addressAllowed(hostname, target.allowPrivate))
      return fail('bad_gateway', 'the upstream could not be reached');
    const lookup = guardedLookup(target.allowPrivate);
    socket = secure
      ? tlsConnect({ host: hostname, port, lookup, servername: isIP(hostname) === 0 ? hostname : undefined, ALPNProtocols: ['http/1.1'] })
      : netConnect({ host: hostname, port, lookup });
    const s = socket;
    s.setNoDelay(true);
    s.once('error', () => fail('bad_gateway', 'the upstream could not be reached'));
    s.once(secure ? 'secureConnect' : 'connect', () => {
      const lines = [`GET ${o.path} HTTP/1.1`, `host: ${url.host}`];
      const h = o.headers;
      for (let i = 0; i < h.length; i += 2) {
        // Values came through Node's header parser or the policy; a line break would be a second header.
        if (/[\r\n]/.test(h[i]!) || /[\r\n]/.test(h[i + 1]!)) continue;
        lines.push(`${h[i]}: ${h[i + 1]}`);
      }
      lines.push('connection: Upgrade', 'upgrade: websocket', '', '');
      s.write(lines.join('\r\n'));
    });
    let buf: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const end = buf.indexOf(HEAD_END);
      if (end === -1) {
        if (buf.length > MAX_HEAD_BYTES) fail('bad_gateway', 'the upstream handshake response is too large');
        return;
      }
      s.removeListener('data', onData);
      s.pause();
      const head = buf.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(`${head[0]} `)?.[1] ?? 0);
      const headers: string[] = [];
      for (let i = 1; i < head.length; i++) {
        const colon = head[i]!.indexOf(':');
        if (colon <= 0) return fail('bad_gateway', 'malformed upstream handshake response');
        headers.push(head[i]!.slice(0, colon).trim().toLowerCase(), head[i]!.slice(colon + 1).trim());
      }
      const upgrade = headers.findIndex((v, i) => i % 2 === 0 && v === 'upgrade');
      if (status !== 101 || upgrade === -1 || headers[upgrade + 1]!.toLowerCase() !== 'websocket') {
        return fail('bad_gateway', `the upstream did not accept the WebSocket upgrade (status ${status || 'unreadable'})`, status || null);
      }
      clearTimeout(timer);
      s.removeListener('close', onClose);
      s.removeAllListeners('error');
      resolve({ ok: true, socket: s, headers, rest: buf.subarray(end + 4) });
    };
    s.on('data', onData);
    const onClose = () => fail('bad_gateway', 'the upstream closed the connection during the WebSocket handshake');
    s.once('close', onClose);
  });
}
