import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';

/**
 * An httpbin-like echo service on bare node:http: the demo API behind the gateway and the
 * benchmark upstream, so every request path is a few allocations and one JSON.stringify.
 * Limits clamp like httpbin's (`/delay/60` waits the maximum) rather than fail; malformed
 * numbers are a 400.
 */
export type DemoUpstreamOptions = {
  /** Longest /delay in ms (default 10 000). */
  maxDelayMs?: number;
  /** Largest /bytes body (default 10 MiB). */
  maxBytes?: number;
  /** Most /stream lines (default 100). */
  maxStreamLines?: number;
  /** Largest request body /anything reads (default 1 MiB). */
  maxBodyBytes?: number;
};

const ENDPOINTS = {
  'GET /': 'this index',
  'GET /get': 'echo of the query, headers and origin',
  'ANY /anything[/…]': 'echo of method, path, query, headers (incl. X-Tollgate-* identity) and body',
  'GET /headers': 'the request headers',
  'ANY /status/:code': 'responds with that status (200–599)',
  'ANY /delay/:ms': 'responds after ms milliseconds (clamped)',
  'GET /bytes/:n': 'n random bytes (clamped)',
  'GET /stream/:n': 'n newline-delimited JSON lines, streamed (clamped)',
  'GET /json': 'a sample JSON document',
};

const SAMPLE = {
  slideshow: {
    author: 'Tollgate',
    title: 'Sample slide show',
    slides: [
      { title: 'Wake up to Tollgate', type: 'all' },
      { title: 'Overview', type: 'all', items: ['Why an API gateway', 'Who meters the calls'] },
    ],
  },
};

const TOLLGATE_HEADERS = ['consumer', 'key-id', 'plan', 'tenant', 'request-id'] as const;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const json = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json), ...headers });
  res.end(json);
}

function sendError(res: ServerResponse, err: HttpError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  send(res, err.status, { error: { code: err.code, message: err.message } });
}

/** A non-negative integer path segment, or a 400 naming what was wrong. */
function intParam(raw: string | undefined, what: string): number {
  if (!raw || !/^\d{1,15}$/.test(raw))
    throw new HttpError(400, 'bad_request', `${what} must be a non-negative integer, got ${JSON.stringify((raw ?? '').slice(0, 40))}`);
  return Number(raw);
}

function query(url: URL): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of url.searchParams) {
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

function tollgateIdentity(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of TOLLGATE_HEADERS) {
    const v = req.headers[`x-tollgate-${h}`];
    if (typeof v === 'string') out[h] = v;
  }
  return out;
}

function origin(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? '';
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) {
      reject(new HttpError(413, 'payload_too_large', `request body is larger than ${limit} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(new HttpError(413, 'payload_too_large', `request body is larger than ${limit} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function describeBody(buf: Buffer, contentType: string | undefined): { body: string; json: unknown } {
  const text = buf.toString('utf8');
  let json: unknown = null;
  if (contentType?.includes('json') && text.length) {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  return { body: text, json };
}

export function createDemoUpstream(opts: DemoUpstreamOptions = {}): Server {
  const maxDelayMs = opts.maxDelayMs ?? 10_000;
  const maxBytes = opts.maxBytes ?? 10 * 1024 * 1024;
  const maxStreamLines = opts.maxStreamLines ?? 100;
  const maxBodyBytes = opts.maxBodyBytes ?? 1024 * 1024;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://upstream.invalid');
    } catch {
      throw new HttpError(400, 'bad_request', 'the request target is not a valid URL');
    }
    const method = req.method ?? 'GET';
    const path = url.pathname;
    const segments = path.split('/').filter(Boolean);
    const [head, arg, ...rest] = segments;
    const onlyGet = () => {
      if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, 'method_not_allowed', `${path} answers GET only`);
    };

    if (path === '/') {
      onlyGet();
      return send(res, 200, { service: 'tollgate demo upstream', endpoints: ENDPOINTS });
    }
    if (path === '/get') {
      onlyGet();
      return send(res, 200, { args: query(url), headers: req.headers, tollgate: tollgateIdentity(req), origin: origin(req), url: req.url });
    }
    if (path === '/headers') {
      onlyGet();
      return send(res, 200, { headers: req.headers });
    }
    if (path === '/json') {
      onlyGet();
      return send(res, 200, SAMPLE);
    }
    if (head === 'anything') {
      const buf = await readBody(req, maxBodyBytes);
      const { body, json } = describeBody(buf, req.headers['content-type']);
      return send(res, 200, {
        method,
        path,
        args: query(url),
        headers: req.headers,
        tollgate: tollgateIdentity(req),
        body,
        json,
        origin: origin(req),
        url: req.url,
      });
    }
    if (head === 'status' && rest.length === 0) {
      const code = intParam(arg, 'status code');
      if (code < 200 || code > 599) throw new HttpError(400, 'bad_request', `status code must be between 200 and 599, got ${code}`);
      req.resume();
      if (code === 204 || code === 304) {
        res.writeHead(code);
        res.end();
        return;
      }
      return send(res, code, { status: code });
    }
    if (head === 'delay' && rest.length === 0) {
      const ms = Math.min(intParam(arg, 'delay'), maxDelayMs);
      req.resume();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        // A client that gives up frees its timer at once.
        res.on('close', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      if (res.destroyed || res.writableEnded) return;
      return send(res, 200, { delayMs: ms, args: query(url), headers: req.headers });
    }
    if (head === 'bytes' && rest.length === 0) {
      onlyGet();
      const n = Math.min(intParam(arg, 'byte count'), maxBytes);
      const body = randomBytes(n);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
      res.end(body);
      return;
    }
    if (head === 'stream' && rest.length === 0) {
      onlyGet();
      const n = Math.min(intParam(arg, 'line count'), maxStreamLines);
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      for (let id = 0; id < n && !res.destroyed; id++) {
        const ok = res.write(`${JSON.stringify({ id, url: req.url, args: query(url), headers: req.headers })}\n`);
        if (!ok) await new Promise((r) => res.once('drain', r));
      }
      res.end();
      return;
    }
    throw new HttpError(404, 'not_found', `no endpoint ${method} ${path.slice(0, 200)}; GET / lists them`);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      req.resume();
      sendError(res, err instanceof HttpError ? err : new HttpError(500, 'internal', 'internal error'));
    });
  });
  // Longer than the gateway's pooled-connection idle time, so the upstream never closes a socket
  // the gateway is about to reuse.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });
  return server;
}
