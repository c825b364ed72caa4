import { randomBytes } from 'node:crypto';

/**
 * A WebSocket frame-header reader (RFC 6455 §5.2) for bytes relayed as they are: it never copies
 * or unmasks payloads, it only walks the headers to count messages and to refuse what a proxy
 * must not pass on. Chunks may split a header anywhere; the reader keeps what it needs.
 */

/** Close codes (RFC 6455 §7.4.1) the gateway closes with. */
export const CLOSE = { normal: 1000, goingAway: 1001, protocolError: 1002, tooBig: 1009, policy: 1008 } as const;

export type FrameViolation = { code: number; reason: string };

export type FrameReaderOptions = {
  /** Client → server frames must be masked; server → client frames must not be (§5.1). */
  masked: boolean;
  /** Largest payload of one frame. */
  maxFrameBytes: number;
};

export class FrameReader {
  /** Complete data messages seen (a FIN frame of a text, binary or continuation opcode). */
  messages = 0;
  /** All bytes seen, headers and payloads. */
  bytes = 0;
  /** The close code of a close frame seen, if any (only when its payload arrived in one piece with the header). */
  closeCode: number | null = null;

  /** Payload bytes of the current frame still to skip. */
  private remaining = 0;
  /** Header bytes of a frame split across chunks. */
  private partial: Buffer | null = null;
  /** A fragmented data message is open (continuation frames expected). */
  private fragmented = false;

  constructor(private readonly opts: FrameReaderOptions) {}

  /** Reads one chunk; a violation means the connection must close with its code. */
  push(chunk: Buffer): FrameViolation | null {
    this.bytes += chunk.length;
    let buf = chunk;
    if (this.partial !== null) {
      buf = Buffer.concat([this.partial, chunk]);
      this.partial = null;
    }
    let at = 0;
    while (at < buf.length) {
      if (this.remaining > 0) {
        const skip = Math.min(this.remaining, buf.length - at);
        this.remaining -= skip;
        at += skip;
        continue;
      }
      const left = buf.length - at;
      if (left < 2) {
        this.partial = Buffer.from(buf.subarray(at));
        return null;
      }
      const b0 = buf[at]!;
      const b1 = buf[at + 1]!;
      const fin = (b0 & 0x80) !== 0;
      const opcode = b0 & 0x0f;
      const masked = (b1 & 0x80) !== 0;
      let len = b1 & 0x7f;
      let headerLen = 2;
      if (len === 126) headerLen = 4;
      else if (len === 127) headerLen = 10;
      if (masked) headerLen += 4;
      if (left < headerLen) {
        this.partial = Buffer.from(buf.subarray(at));
        return null;
      }
      if (masked !== this.opts.masked) {
        return {
          code: CLOSE.protocolError,
          reason: this.opts.masked ? 'client frames must be masked' : 'server frames must not be masked',
        };
      }
      if (len === 126) len = buf.readUInt16BE(at + 2);
      else if (len === 127) {
        const hi = buf.readUInt32BE(at + 2);
        // The most significant bit must be 0 (§5.2); anything past 2^53 is no length we relay.
        if (hi & 0x80000000) return { code: CLOSE.protocolError, reason: 'invalid frame length' };
        len = hi * 2 ** 32 + buf.readUInt32BE(at + 6);
      }
      const control = opcode >= 8;
      if (control) {
        if (opcode > 10) return { code: CLOSE.protocolError, reason: `reserved opcode ${opcode}` };
        if (!fin || len > 125) return { code: CLOSE.protocolError, reason: 'invalid control frame' };
        if (opcode === 8 && len >= 2 && left >= headerLen + 2) {
          let code = buf.readUInt16BE(at + headerLen);
          if (masked) code ^= buf.readUInt16BE(at + headerLen - 4);
          this.closeCode = code;
        }
      } else {
        if (opcode > 2) return { code: CLOSE.protocolError, reason: `reserved opcode ${opcode}` };
        if (opcode === 0 && !this.fragmented) return { code: CLOSE.protocolError, reason: 'continuation without a message' };
        if (opcode !== 0 && this.fragmented) return { code: CLOSE.protocolError, reason: 'new message inside a fragmented one' };
        if (len > this.opts.maxFrameBytes) return { code: CLOSE.tooBig, reason: `frame exceeds ${this.opts.maxFrameBytes} bytes` };
        this.fragmented = !fin;
        if (fin) this.messages++;
      }
      at += headerLen;
      this.remaining = len;
    }
    return null;
  }
}

/** An unmasked close frame (server → client) with a code and a short reason. */
export function closeFrame(code: number, reason: string): Buffer {
  const text = Buffer.from(reason.slice(0, 120), 'utf8');
  const out = Buffer.alloc(4 + text.length);
  out[0] = 0x88;
  out[1] = 2 + text.length;
  out.writeUInt16BE(code, 2);
  text.copy(out, 4);
  return out;
}

/** The same close frame masked (client role, towards the upstream). */
export function maskedCloseFrame(code: number, reason: string): Buffer {
  const plain = closeFrame(code, reason);
  const payload = plain.subarray(2);
  const mask = randomBytes(4);
  const out = Buffer.alloc(plain.length + 4);
  out[0] = plain[0]!;
  out[1] = plain[1]! | 0x80;
  mask.copy(out, 2);
  for (let i = 0; i < payload.length; i++) out[6 + i] = payload[i]! ^ mask[i % 4]!;
  return out;
}
