import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';

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
  // HTTP/2 has no Transfer-Encoding: a body of unknown length is DATA frames after HEADERS
  // without END_STREAM, counted and limited like a chunked HTTP/1.1 body.
  if (
    te === undefined &&
    !(cl === undefined && req.httpVersionMajor === 2 && !(req as unknown as Http2ServerRequest).stream.endAfterHeaders)
  ) {
    const declared = cl === undefined ? 0 : Number(cl);
    return { body: declared > 0 ? req : null, limiter: null, declared };
  }
  const limiter = new BodyLimit(maxBytes);
  req.pipe(limiter);
  req.on('error', (err) => limiter.destroy(err));
  return { body: limiter, limiter, declared: -1 };
}
