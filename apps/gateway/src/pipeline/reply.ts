import type { FastifyReply } from 'fastify';
import { ERROR_STATUS, errorBody, type ErrorCode } from '@tollgate/policy';
import type { RequestContext } from './context';
import { clientGone } from './meter';

export const JSON_TYPE = 'application/json; charset=utf-8';

export const WWW_AUTHENTICATE_MISSING = 'Bearer realm="tollgate"';
export const WWW_AUTHENTICATE_INVALID = 'Bearer realm="tollgate", error="invalid_token"';

export function sendError(reply: FastifyReply, code: ErrorCode, message: string, extraHeaders?: Record<string, string>): FastifyReply {
  // The request id goes in the header too, as on every response the gateway relays.
  reply.code(ERROR_STATUS[code]).header('content-type', JSON_TYPE).header('x-request-id', reply.request.id);
  if (extraHeaders) reply.headers(extraHeaders);
  return reply.send(JSON.stringify(errorBody(code, message, reply.request.id)));
}

/**
 * While the process drains, a response ends its keep-alive connection (`Connection: close`, Node's
 * `shouldKeepAlive`) instead of leaving it idle for the drain to close under a client that may be
 * sending its next request on it. Requests that arrive during the drain get the same from Fastify
 * (return503OnClosing off); this covers those that were already in flight.
 */
export function closeIfDraining(ctx: RequestContext): void {
  if (ctx.gw.lifecycle.draining) ctx.reply.raw.shouldKeepAlive = false;
}

/**
 * An answer the gateway writes itself. A client already gone gets none: Fastify's onResponse
 * would never fire on its closed socket, so the call is metered as 499 here instead.
 */
export function answer(
  ctx: RequestContext,
  code: ErrorCode,
  message: string,
  extraHeaders?: Record<string, string>,
): FastifyReply | undefined {
  if (ctx.reply.raw.destroyed) return leftEarly(ctx);
  closeIfDraining(ctx);
  return sendError(ctx.reply, code, message, extraHeaders);
}

/** The client closed its connection before anything was written: nothing to send, meter 499. */
export function leftEarly(ctx: RequestContext): undefined {
  ctx.reply.hijack();
  clientGone(ctx);
  return undefined;
}
