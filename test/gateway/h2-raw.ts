import { connect } from 'node:net';

/**
 * A minimal HTTP/2 client that writes frames byte for byte (node:http2 refuses to send most of
 * what the abuse tests need: upper-case names, connection headers, repeated pseudo-headers).
 * Header blocks are HPACK literals without indexing and without Huffman coding.
 */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, GOAWAY: 7 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;

function hpackInt(n: number): Buffer {
  if (n < 127) return Buffer.from([n]);
  const out = [127];
  n -= 127;
  while (n >= 128) {
    out.push((n % 128) + 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/** A header block of literal fields, exactly the names and values given (order, case, repeats kept). */
export function headerBlock(fields: [string, string][]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    const n = Buffer.from(name, 'latin1');
    const v = Buffer.from(value, 'latin1');
    parts.push(Buffer.from([0]), hpackInt(n.length), n, hpackInt(v.length), v);
  }
  return Buffer.concat(parts);
}

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId, 5);
  return Buffer.concat([head, payload]);
}

export type RawH2Result = {
  /** RST_STREAM error code on stream 1, if the server reset it. */
  reset: number | null;
  /** GOAWAY error code, if the server closed the connection. */
  goaway: number | null;
  /** Whether a response HEADERS frame came on stream 1. */
  answered: boolean;
};

/**
 * Opens an h2c connection, sends the preface, SETTINGS and `frames` (stream 1), and reports how
 * the server dealt with stream 1: reset, connection closed, or answered.
 */
export function rawH2(port: number, frames: Buffer[], timeoutMs = 5000): Promise<RawH2Result> {
  return new Promise((resolve) => {
    const result: RawH2Result = { reset: null, goaway: null, answered: false };
    const sock = connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const done = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve(result);
    };
    const timer = setTimeout(done, timeoutMs);
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        const type = buf[3]!;
        const flags = buf[4]!;
        const stream = buf.readUInt32BE(5) & 0x7fffffff;
        const payload = buf.subarray(9, 9 + len);
        buf = buf.subarray(9 + len);
        if (type === FRAME.SETTINGS && !(flags & FLAG.ACK)) sock.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
        if (type === FRAME.RST_STREAM && stream === 1) result.reset = payload.readUInt32BE(0);
        if (type === FRAME.GOAWAY) result.goaway = payload.readUInt32BE(4);
        if (type === FRAME.HEADERS && stream === 1) result.answered = true;
        if (result.reset !== null || result.goaway !== null || result.answered) return done();
      }
    });
    sock.on('close', done);
    sock.on('error', done);
    sock.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0), ...frames]));
  });
}

/** A request's HEADERS frame on stream 1 with the given fields (END_HEADERS, END_STREAM unless `body`). */
export function requestHeaders(fields: [string, string][], body = false): Buffer {
  return frame(FRAME.HEADERS, FLAG.END_HEADERS | (body ? 0 : FLAG.END_STREAM), 1, headerBlock(fields));
}

export function dataFrame(bytes: Buffer, end = true): Buffer {
  return frame(FRAME.DATA, end ? FLAG.END_STREAM : 0, 1, bytes);
}
