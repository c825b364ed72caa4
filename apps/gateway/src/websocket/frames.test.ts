import { describe, expect, it } from 'vitest';
import { CLOSE, closeFrame, FrameReader, maskedCloseFrame } from './frames';

const masked = (opcode: number, payload: Buffer, fin = true) => {
  const len = payload.length;
  const head =
    len < 126
      ? Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | len])
      : Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | 126, len >> 8, len & 0xff]);
  return Buffer.concat([head, Buffer.from([1, 2, 3, 4]), payload]);
};

describe('FrameReader', () => {
  it('counts messages and bytes with headers split across chunks, fragments as one message', () => {
    const r = new FrameReader({ masked: true, maxFrameBytes: 1024 });
    const stream = Buffer.concat([
      masked(1, Buffer.alloc(300)),
      masked(2, Buffer.alloc(5), false),
      masked(0, Buffer.alloc(5)),
      masked(9, Buffer.alloc(0)),
    ]);
    for (let i = 0; i < stream.length; i += 3) expect(r.push(stream.subarray(i, i + 3))).toBeNull();
    expect(r.messages).toBe(2);
    expect(r.bytes).toBe(stream.length);
  });

  it('refuses unmasked client frames, masked server frames, oversize, bad continuations and long control frames', () => {
    expect(new FrameReader({ masked: true, maxFrameBytes: 10 }).push(Buffer.from([0x81, 0x01, 0x61]))?.code).toBe(CLOSE.protocolError);
    expect(new FrameReader({ masked: false, maxFrameBytes: 10 }).push(masked(1, Buffer.from('a')))?.code).toBe(CLOSE.protocolError);
    expect(new FrameReader({ masked: true, maxFrameBytes: 10 }).push(masked(1, Buffer.alloc(11)))?.code).toBe(CLOSE.tooBig);
    expect(new FrameReader({ masked: true, maxFrameBytes: 10 }).push(masked(0, Buffer.alloc(1)))?.code).toBe(CLOSE.protocolError);
    expect(new FrameReader({ masked: true, maxFrameBytes: 1000 }).push(masked(9, Buffer.alloc(126)))?.code).toBe(CLOSE.protocolError);
  });

  it('reads the close code from a masked close frame, and writes close frames both ways', () => {
    const r = new FrameReader({ masked: true, maxFrameBytes: 10 });
    const frame = maskedCloseFrame(1001, 'bye');
    expect(r.push(frame)).toBeNull();
    expect(r.closeCode).toBe(1001);
    const plain = closeFrame(1008, 'revoked');
    expect(plain.readUInt16BE(2)).toBe(1008);
    expect(new FrameReader({ masked: false, maxFrameBytes: 10 }).push(plain)).toBeNull();
  });
});
