import { NEXT, type RequestContext, type Step } from './context';
import { answer } from './reply';

/**
 * Framing checks, before anything is looked up: request smuggling (a message framed two ways is
 * refused, never "fixed"), a declared body over the limit, a request target over its limit
 * (414), and a second Host header.
 */
export function checkFraming(ctx: RequestContext): Step {
  const headers = ctx.headers;
  if (headers['transfer-encoding'] !== undefined && headers['content-length'] !== undefined) {
    return answer(ctx, 'bad_request', 'Content-Length together with Transfer-Encoding is not allowed');
  }
  const max = ctx.gw.config.maxBodyBytes;
  const declared = headers['content-length'] === undefined ? 0 : Number(headers['content-length']);
  if (declared > max) return answer(ctx, 'payload_too_large', `request body exceeds ${max} bytes`);
  ctx.declared = declared;

  const maxTarget = ctx.gw.config.maxTargetBytes;
  if ((ctx.req.url ?? '').length > maxTarget) return answer(ctx, 'uri_too_long', `request target exceeds ${maxTarget} bytes`);

  // Two Host headers: which one routed the request would be a guess (RFC 9112 §3.2 says 400).
  if (hasDuplicateHost(ctx.req.rawHeaders)) return answer(ctx, 'bad_request', 'more than one Host header');
  return NEXT;
}

function hasDuplicateHost(raw: string[]): boolean {
  let seen = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') {
      if (seen) return true;
      seen = true;
    }
  }
  return false;
}
