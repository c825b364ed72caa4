import http2, { type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Session } from 'node:http2';
import type { Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import { ERROR_STATUS, errorBody, type ErrorCode } from '@tollgate/policy';
import type { GatewayConfig } from '../env';

/** The client connection preface (RFC 9113 §3.4) that opens every h2c prior-knowledge connection. */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** What ALPN offers on the TLS port when HTTP/2 is on: h2 first, HTTP/1.1 as the fallback. */
export const ALPN_PROTOCOLS = ['h2', 'http/1.1'];

/**
 * The stages check `reply.raw.destroyed` before answering (a client that left gets no answer).
 * Node's HTTP/2 compatibility response has no such property; reading its stream's gives the
 * same meaning, so every stage runs unchanged over HTTP/2.
 */
const proto = http2.Http2ServerResponse.prototype as unknown as Record<string, unknown>;
if (!('destroyed' in proto)) {
  Object.defineProperty(proto, 'destroyed', {
    configurable: true,
    get(this: Http2ServerResponse) {
      const stream = this.stream as http2.ServerHttp2Stream | undefined;
      return stream === undefined || stream === null || stream.destroyed;
    },
  });
}

export type Http2Transport = {
  /** HTTP/2 sessions open on this listener. */
  readonly sessions: ReadonlySet<ServerHttp2Session>;
  /** GOAWAY to every session: streams in flight finish, no new ones start (graceful drain). */
  closeIdle(): void;
  /** Destroys every session (the drain's grace period is over). */
  closeAll(): void;
};

function writeError(res: Http2ServerResponse, code: ErrorCode, message: string): void {
  const body = JSON.stringify(errorBody(code, message));
  res.writeHead(ERROR_STATUS[code], { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * HTTP/2 beside HTTP/1.1 on one of the app's listeners (docs/adr/0026). One `http2` server
 * (never listening itself) owns the HTTP/2 sessions; the app's own server hands it the sockets
 * that speak HTTP/2 — TLS connections that negotiated `h2` by ALPN (`mode: 'tls'`), or plain ones
 * that open with the h2c preface (`mode: 'h2c'`) — and keeps the rest on its HTTP/1.1 path
 * untouched. Requests from both go through the same Fastify routing, so every stage applies
 * unchanged. nghttp2 refuses malformed requests (connection-specific headers, `te` other than
 * `trailers`, upper-case names, missing or repeated pseudo-headers, Content-Length that doesn't
 * match the DATA) before they become requests; the translation below handles what is left.
 */
export function attachHttp2(app: FastifyInstance, config: GatewayConfig, mode: 'tls' | 'h2c'): Http2Transport {
  const sessions = new Set<ServerHttp2Session>();
  const h2 = http2.createServer({
    maxSessionMemory: 10,
    settings: { maxConcurrentStreams: config.h2MaxStreams, maxHeaderListSize: config.maxHeaderBytes, enablePush: false },
    maxHeaderListPairs: 256,
  });
  // An idle session is closed like an idle keep-alive connection.
  h2.setTimeout(config.keepAliveTimeoutMs);
  h2.on('session', (session: ServerHttp2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    session.on('error', () => session.destroy());
  });
  h2.on('sessionError', () => undefined);
  h2.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => {
    const headers = req.headers;
    if (req.method === 'CONNECT') return writeError(res, 'method_not_allowed', 'CONNECT is not supported');
    // `:authority` is the host (RFC 9113 §8.3.1); a Host header that says otherwise is ambiguous.
    const authority = headers[':authority'];
    if (headers.host === undefined) {
      if (authority !== undefined) headers.host = authority;
    } else if (authority !== undefined && headers.host !== authority) {
      return writeError(res, 'bad_request', ':authority and Host disagree');
    }
    // HTTP/1.1's requestTimeout, for a body: a stream whose body stops arriving is cancelled.
    if (!req.stream.endAfterHeaders) {
      const stream = req.stream;
      const timer = setTimeout(() => {
        if (!req.complete) stream.close(http2.constants.NGHTTP2_CANCEL);
      }, config.requestTimeoutMs);
      req.once('end', () => clearTimeout(timer));
      stream.once('close', () => clearTimeout(timer));
    }
    app.routing(req as never, res as never);
  });

  if (mode === 'tls') {
    const server = app.server as unknown as TlsServer;
    const h1 = server.listeners('secureConnection') as ((socket: TLSSocket) => void)[];
    server.removeAllListeners('secureConnection');
    server.on('secureConnection', (socket: TLSSocket) => {
      if (socket.alpnProtocol === 'h2') h2.emit('connection', socket);
      else for (const l of h1) l.call(server, socket);
    });
  } else {
    const server = app.server as HttpServer;
    const h1 = server.listeners('connection') as ((socket: Socket) => void)[];
    server.removeAllListeners('connection');
    const peekTimeoutMs = Math.min(config.headersTimeoutMs, config.requestTimeoutMs);
    server.on('connection', (socket: Socket) => {
      // Which protocol is only known from the first bytes; until they come, the headers timeout applies.
      socket.setTimeout(peekTimeoutMs, () => socket.destroy());
      socket.once('data', (chunk: Buffer) => {
        socket.setTimeout(0);
        socket.pause();
        socket.unshift(chunk);
        const n = Math.min(chunk.length, PREFACE.length);
        if (chunk.subarray(0, n).equals(PREFACE.subarray(0, n))) h2.emit('connection', socket);
        else for (const l of h1) l.call(server, socket);
        process.nextTick(() => socket.resume());
      });
    });
  }

  const transport: Http2Transport = {
    sessions,
    closeIdle() {
      for (const s of sessions) if (!s.closed) s.close();
    },
    closeAll() {
      for (const s of sessions) s.destroy();
    },
  };
  // Draining: sessions get GOAWAY when the listener closes, so server.close() can complete.
  app.addHook('preClose', (done) => {
    transport.closeIdle();
    done();
  });
  return transport;
}
