import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { IncomingMessage } from 'node:http';

/** Counts request body bytes and fails the stream once it passes `limit`. */
export class BodyLimit extends Transform {
  bytes = 0;
  exceeded = false;
  constructor(private readonly limit: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) {
      this.exceeded = true;
      cb(new Error('request body too large'));
      return;
    }
    cb(null, chunk);
  }
}

export function requestBody(
  req: IncomingMessage,
  maxBytes: number,
): { body: Readable | null; limiter: BodyLimit | null; declared: number } {
  const te = req.headers['transfer-encoding'];
  const cl = req.headers['content-length'];
  if (te === undefined) {
    const declared = cl === undefined ? 0 : Number(cl);
    return { body: declared > 0 ? req : null, limiter: null, declared };
  }
  const limiter = new BodyLimit(maxBytes);
  req.pipe(limiter);
  req.on('error', (err) => limiter.destroy(err));
  return { body: limiter, limiter, declared: -1 };
}
