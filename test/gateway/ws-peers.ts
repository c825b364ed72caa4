import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';

/**
 * Both ends of a WebSocket for the gateway tests, on raw sockets (no `ws` dependency; Node 20 has
 * no global WebSocket): a client that masks its frames and an echo upstream that records handshakes.
 */
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export type Frame = { fin: boolean; opcode: number; payload: Buffer };

/** Encodes one frame; `mask` as RFC 6455 says clients must (false to send a hostile unmasked one). */
export function encodeFrame(opcode: number, payload: Buffer, mask: boolean): Buffer {
  const len = payload.length;
  const head: number[] = [0x80 | opcode];
  const m = mask ? 0x80 : 0;
  if (len < 126) head.push(m | len);
  else if (len < 65536) head.push(m | 126, len >> 8, len & 0xff);
  else {
    head.push(m | 127, 0, 0, 0, 0);
    head.push((len >>> 24) & 0xff, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), payload]);
  const key = randomBytes(4);
  const body = Buffer.from(payload.map((b, i) => b ^ key[i % 4]!));
  return Buffer.concat([Buffer.from(head), key, body]);
}

/** Parses complete frames off the front of `buf`; returns them and what is left. */
export function decodeFrames(buf: Buffer): { frames: Frame[]; rest: Buffer } {
  const frames: Frame[] = [];
  let at = 0;
  for (;;) {
    if (buf.length - at < 2) break;
    const b0 = buf[at]!;
    const b1 = buf[at + 1]!;
    let len = b1 & 0x7f;
    let off = 2;
    if (len === 126) {
      if (buf.length - at < 4) break;
      len = buf.readUInt16BE(at + 2);
      off = 4;
    } else if (len === 127) {
      if (buf.length - at < 10) break;
      len = Number(buf.readBigUInt64BE(at + 2));
      off = 10;
    }
    const masked = (b1 & 0x80) !== 0;
    const keyAt = at + off;
    if (masked) off += 4;
    if (buf.length - at < off + len) break;
    let payload = buf.subarray(at + off, at + off + len);
    if (masked) payload = Buffer.from(payload.map((b, i) => b ^ buf[keyAt + (i % 4)]!));
    frames.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, payload });
    at += off + len;
  }
  return { frames, rest: buf.subarray(at) };
}

export type WsClient = {
  status: number;
  head: string;
  headers: Record<string, string>;
  socket: Socket;
  /** Text of every data frame received, in order. */
  messages: string[];
  /** Resolves with the close code the peer sent (null if the socket just ended). */
  closed: Promise<number | null>;
  send(text: string): void;
  nextMessage(): Promise<string>;
  close(code?: number): void;
};

/** Opens a handshake over raw TCP; resolves with the response status (101 = upgraded client). */
export function wsConnect(port: number, path: string, headers: Record<string, string>): Promise<WsClient> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const key = randomBytes(16).toString('base64');
    const lines = [
      `GET ${path} HTTP/1.1`,
      'Connection: Upgrade',
      'Upgrade: websocket',
      'Sec-WebSocket-Version: 13',
      `Sec-WebSocket-Key: ${key}`,
    ];
    for (const [n, v] of Object.entries(headers)) lines.push(`${n}: ${v}`);
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    let buf: Buffer = Buffer.alloc(0);
    let client: WsClient | null = null;
    let closeCode: number | null = null;
    const waiters: ((m: string) => void)[] = [];
    /** Messages nobody has asked for yet (a first one can arrive with the 101). */
    const inbox: string[] = [];
    let resolveClosed: (c: number | null) => void = () => undefined;
    const closed = new Promise<number | null>((r) => (resolveClosed = r));
    socket.on('error', (err) => (client ? resolveClosed(closeCode) : reject(err)));
    socket.on('close', () => {
      resolveClosed(closeCode);
      if (!client) reject(new Error(`closed before a response: ${buf.toString('latin1')}`));
    });
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (!client) {
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = buf.subarray(0, end).toString('latin1');
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
        const hdrs: Record<string, string> = {};
        for (const line of head.split('\r\n').slice(1)) {
          const i = line.indexOf(':');
          hdrs[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
        }
        if (status === 101) {
          const accept = createHash('sha1')
            .update(key + GUID)
            .digest('base64');
          if (hdrs['sec-websocket-accept'] !== accept) return reject(new Error('bad Sec-WebSocket-Accept'));
        }
        buf = buf.subarray(end + 4);
        client = {
          status,
          head,
          headers: hdrs,
          socket,
          messages: [],
          closed,
          send: (text) => socket.write(encodeFrame(1, Buffer.from(text), true)),
          nextMessage: () => (inbox.length > 0 ? Promise.resolve(inbox.shift()!) : new Promise((r) => waiters.push(r))),
          close: (code = 1000) => {
            const p = Buffer.alloc(2);
            p.writeUInt16BE(code);
            socket.write(encodeFrame(8, p, true));
          },
        };
        resolve(client);
        if (status !== 101) return;
      }
      const { frames, rest } = decodeFrames(buf);
      buf = rest;
      for (const f of frames) {
        if (f.opcode === 8) {
          closeCode = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null;
          socket.end();
        } else if (f.opcode === 1 || f.opcode === 2) {
          const text = f.payload.toString('utf8');
          client!.messages.push(text);
          const waiter = waiters.shift();
          if (waiter) waiter(text);
          else inbox.push(text);
        }
      }
    });
  });
}

export type WsUpstream = {
  port: number;
  server: Server;
  handshakes: IncomingMessage['headers'][];
  /** Text of every message the upstream received. */
  received: string[];
  close(): Promise<void>;
};

/** A WebSocket echo upstream: says "welcome" on connect, echoes every message, answers a close. */
export async function startWsUpstream(): Promise<WsUpstream> {
  const handshakes: IncomingMessage['headers'][] = [];
  const received: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' });
    res.end('upgrade required');
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    handshakes.push(req.headers);
    const accept = createHash('sha1')
      .update(String(req.headers['sec-websocket-key']) + GUID)
      .digest('base64');
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    socket.write(encodeFrame(1, Buffer.from('welcome'), false));
    let buf: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const { frames, rest } = decodeFrames(buf);
      buf = rest;
      for (const f of frames) {
        if (f.opcode === 8) {
          socket.end(encodeFrame(8, f.payload.subarray(0, 2), false));
          return;
        }
        if (f.opcode === 1 || f.opcode === 2) {
          received.push(f.payload.toString('utf8'));
          socket.write(encodeFrame(f.opcode, f.payload, false));
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    server,
    handshakes,
    received,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
