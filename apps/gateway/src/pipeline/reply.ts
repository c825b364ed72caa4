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
  return sendError(ctx.reply, code, message, extraHeaders);
}

/** The client closed its connection before anything was written: nothing to send, meter 499. */
export function leftEarly(ctx: RequestContext): undefined {
  ctx.reply.hijack();
  clientGone(ctx);
  return undefined;
}
