import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { errorBody } from '@tollgate/policy';
import { holdUpgrade } from '../websocket/proxy';

/** `Upgrade: websocket` on a GET over HTTP/1.1 with `Connection: upgrade` (RFC 6455 §4.1). */
export function isWebSocketHandshake(req: IncomingMessage): boolean {
  if (req.method !== 'GET' || req.httpVersion !== '1.1') return false;
  const upgrade = req.headers.upgrade;
  const connection = req.headers.connection;
  return (
    typeof upgrade === 'string' &&
    upgrade.trim().toLowerCase() === 'websocket' &&
    typeof connection === 'string' &&
    connection.split(',').some((t) => t.trim().toLowerCase() === 'upgrade')
  );
}

/**
 * Node hands every request carrying `Upgrade` to the 'upgrade' listener once there is one, with
 * the raw socket. Each is routed through the same Fastify routing and stages as any request, on a
 * response object bound to that socket (one request per connection): a WebSocket handshake with
 * its socket held for the forward stage (websocket/proxy.ts); any other `Upgrade` (h2c, TLS…)
 * served as a plain request, the header dropped as hop-by-hop (ADR 0019), as before.
 */
export function attachUpgrades(app: FastifyInstance): void {
  app.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const websocket = isWebSocketHandshake(req);
    // A body after a non-WebSocket upgrade request is past the parser Node already detached.
    if (!websocket && (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0)) {
      const body = JSON.stringify(errorBody('bad_request', 'a request body together with Upgrade is not supported'));
      socket.end(
        `HTTP/1.1 400 Bad Request\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
      return;
    }
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket);
    res.once('finish', () => {
      res.detachSocket(socket);
      socket.end();
    });
    if (websocket) holdUpgrade(req, { socket, head });
    app.routing(req, res);
  });
}
