import { performance } from 'node:perf_hooks';
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { util as undiciUtil, type Dispatcher } from 'undici';
import { ReadTimeoutError, QueueTimeoutError } from './upstream-errors';

/** Watches a response body on its way to the client (cache copy); `end(true)` only when it all arrived. */
export type BodyTap = { data(chunk: Buffer): void; end(complete: boolean): void };

/** Body bytes held for a response whose client side isn't attached yet; past this the upstream is paused. */
const HOLD_BYTES = 64 * 1024;

/**
 * One request to one upstream, as an undici dispatch handler that writes the response straight
 * into the client's `ServerResponse`: no body stream objects in between (undici's Readable plus
 * the pipe into the response cost more CPU than the rest of the proxy path together).
 *
 * Body bytes that arrive before `respond` attaches the client (a small body usually comes in the
 * same packet as the headers) are held, and the upstream is paused past HOLD_BYTES. Backpressure
 * after that is the client's: a full socket pauses the upstream until it drains. The client
 * leaving early aborts the upstream request.
 */
export class UpstreamExchange implements Dispatcher.DispatchHandler {
  statusCode = 0;
  /** Response headers as undici parsed them: names and values as Buffers, in order. */
  rawHeaders: Buffer[] = [];
  /** Body bytes passed on to the client so far. */
  bodyBytes = 0;
  /** Called once if a streaming body is cut short: the client left, or the upstream failed. */
  onIncomplete: ((cause: 'client' | 'upstream' | 'timeout') => void) | null = null;

  private abortFn: ((err?: Error) => void) | null = null;
  private resumeFn: (() => void) | null = null;
  private headSettled = false;
  private onHead: ((err: Error | null) => void) | null;
  private held: Buffer[] | null = null;
  private heldBytes = 0;
  private complete = false;
  private failed: Error | null = null;
  private res: ServerResponse | null = null;
  private discard = false;
  private tap: BodyTap | null = null;
  private deadline: NodeJS.Timeout | null = null;
  private finished = false;
  private length: number | null = null;
  private timedOut = false;
  private readTimer: NodeJS.Timeout | null = null;
  /** performance.now() of the last sign of life (request written, headers, a read): the timer checks it when it fires. */
  private lastRead = 0;

  /**
   * `readTimeoutMs`: the longest the upstream may keep the gateway waiting: for a free connection
   * of the pool, then for the response headers, then between two body reads (0 = none). This
   * handler keeps that timer itself, with undici's own headers/body timeouts off: undici replaces
   * its connection timer at every phase of every request, and each replaced one stays on its timer
   * list for up to half a second, so every request left timer objects to survive a scavenge and be
   * promoted. One native timer per request dies with it; a read only notes the time, and the timer,
   * when it fires, re-arms for what is left (refresh() per read cost ~3% CPU). (undici's timers also start
   * only once the request is written, so a request queued behind a pool of busy connections
   * waited without any bound.)
   */
  constructor(
    onHead: (err: Error | null) => void,
    private readonly readTimeoutMs = 0,
  ) {
    this.onHead = onHead;
    if (readTimeoutMs > 0) this.readTimer = setTimeout(this.onReadTimeout, readTimeoutMs);
  }

  // ---- undici's dispatch handler
  onConnect(abort: (err?: Error) => void): void {
    // Called as the request goes out on a connection. One that timed out waiting for it must not
    // go out at all: throwing here makes undici fail it without writing (and keep the connection).
    if (this.failed !== null) throw this.failed;
    this.abortFn = abort;
    this.lastRead = performance.now();
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true; // 1xx: the final response follows
    this.lastRead = performance.now();
    this.statusCode = statusCode;
    this.rawHeaders = rawHeaders;
    this.resumeFn = resume;
    this.settleHead(null);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.discard) return true;
    const res = this.res;
    if (res === null) {
      (this.held ??= []).push(chunk);
      this.heldBytes += chunk.length;
      if (this.heldBytes < HOLD_BYTES) {
        this.lastRead = performance.now();
        return true;
      }
      this.stopReadTimer(); // paused on our side: the upstream isn't the one being slow
      return false;
    }
    this.bodyBytes += chunk.length;
    this.tap?.data(chunk);
    if (res.write(chunk)) {
      this.lastRead = performance.now();
      return true;
    }
    this.stopReadTimer();
    res.once('drain', this.resume);
    return false;
  }

  onComplete(): void {
    this.complete = true;
    this.stopReadTimer();
    if (this.res !== null) this.finish(true);
  }

  onError(err: Error): void {
    this.stopReadTimer();
    if (!this.headSettled) {
      this.settleHead(err);
      return;
    }
    this.failed = err;
    if (this.res !== null && !this.finished) {
      this.finish(false);
      this.res.destroy(err);
      // Our deadline, or the upstream going silent past the read timeout: both are timeouts.
      const timedOut = this.timedOut || err instanceof ReadTimeoutError;
      this.onIncomplete?.(timedOut ? 'timeout' : 'upstream');
    }
  }

  // ---- the gateway's side
  /** Arms the route's total deadline for a body still streaming; an expiry aborts the exchange. */
  armDeadline(leftMs: number): void {
    if (leftMs <= 0) this.onDeadline();
    else this.deadline = setTimeout(this.onDeadline, leftMs);
  }

  /** Content-Length the upstream declared, or -1. */
  declaredLength(): number {
    if (this.length !== null) return this.length;
    this.length = -1;
    const raw = this.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      if (name.length === 14 && undiciUtil.headerNameToString(name) === 'content-length') {
        const n = Number(raw[i + 1]!.toString('latin1'));
        if (Number.isSafeInteger(n) && n >= 0) this.length = n;
        break;
      }
    }
    return this.length;
  }

  /**
   * Sends the response to the client: status and headers, then the body as it arrives.
   * - `failed`: nothing was sent (the exchange already failed, or its headers are unusable);
   *   the caller answers with an error instead.
   * - `gone`: the client left while the upstream was answering; nothing was sent.
   * - `sent`: the whole response is written.
   * - `streaming`: the body follows as it arrives; `onIncomplete` fires if it is cut short.
   */
  respond(
    res: ServerResponse,
    headers: OutgoingHttpHeaders | string[],
    bodyless: boolean,
    tap: BodyTap | null,
  ): 'failed' | 'gone' | 'sent' | 'streaming' {
    if (this.failed !== null) return 'failed';
    if (res.destroyed) {
      this.abandon();
      tap?.end(false);
      return 'gone';
    }
    try {
      res.writeHead(this.statusCode, headers as OutgoingHttpHeaders);
    } catch {
      this.abort(new Error('unusable upstream response headers'));
      return 'failed';
    }
    const held = this.held;
    this.held = null;
    if (bodyless) {
      // Nothing goes to the client; what the upstream still sends is read and dropped.
      this.discard = true;
      this.finished = true;
      this.clearDeadline();
      tap?.end(true);
      res.end();
      if (this.heldBytes >= HOLD_BYTES) this.resume();
      return 'sent';
    }
    this.tap = tap;
    if (this.complete) {
      // The whole body is here: one write, no listeners.
      const body = held === null ? null : held.length === 1 ? held[0]! : Buffer.concat(held, this.heldBytes);
      if (body !== null) {
        this.bodyBytes = body.length;
        tap?.data(body);
      }
      this.finished = true;
      this.clearDeadline();
      tap?.end(true);
      if (body === null) res.end();
      else res.end(body);
      return 'sent';
    }
    this.res = res;
    res.once('close', this.onClientClose);
    if (held !== null) {
      for (const chunk of held) {
        this.bodyBytes += chunk.length;
        tap?.data(chunk);
        res.write(chunk);
      }
    }
    if (this.heldBytes >= HOLD_BYTES) {
      if (res.writableNeedDrain) res.once('drain', this.resume);
      else this.resume();
    }
    return 'streaming';
  }

  /** Ends an exchange whose response will not be used (the client gets an error instead). */
  abandon(): void {
    this.discard = true;
    this.held = null;
    this.clearDeadline();
    this.stopReadTimer();
    if (!this.complete) this.abort(new Error('response abandoned'));
  }

  readonly abort = (err?: Error): void => {
    if (this.complete || this.abortFn === null) return;
    this.abortFn(err);
  };

  private readonly onDeadline = (): void => {
    this.timedOut = true;
    this.abort(new Error('upstream response exceeded the route timeout'));
  };

  private readonly resume = (): void => {
    this.restartReadTimer();
    this.resumeFn?.();
  };

  private readonly onReadTimeout = (): void => {
    const quiet = this.abortFn === null ? this.readTimeoutMs : performance.now() - this.lastRead;
    if (quiet < this.readTimeoutMs) {
      // Something arrived since the timer was armed: wait out the rest from then.
      this.readTimer = setTimeout(this.onReadTimeout, Math.max(1, Math.ceil(this.readTimeoutMs - quiet)));
      return;
    }
    this.readTimer = null;
    if (this.abortFn === null) {
      // Still queued for a connection: answer now; onConnect refuses to send it later.
      const err = new QueueTimeoutError('no upstream connection became free in time');
      this.failed = err;
      this.discard = true;
      this.settleHead(err);
      return;
    }
    this.abort(
      new ReadTimeoutError(
        this.headSettled ? 'the upstream stopped sending its response body' : 'the upstream did not send its response headers in time',
      ),
    );
  };

  private stopReadTimer(): void {
    if (this.readTimer !== null) {
      clearTimeout(this.readTimer);
      this.readTimer = null;
    }
  }

  /** The upstream is read again after a pause on our side. */
  private restartReadTimer(): void {
    if (this.readTimeoutMs > 0 && !this.complete && this.failed === null && !this.discard) {
      this.lastRead = performance.now();
      if (this.readTimer === null) this.readTimer = setTimeout(this.onReadTimeout, this.readTimeoutMs);
    }
  }

  private readonly onClientClose = (): void => {
    if (this.finished) return;
    this.finish(false);
    this.abort(new Error('client closed the connection'));
    this.onIncomplete?.('client');
  };

  private settleHead(err: Error | null): void {
    if (this.headSettled) return;
    this.headSettled = true;
    const cb = this.onHead!;
    this.onHead = null;
    cb(err);
  }

  private clearDeadline(): void {
    if (this.deadline !== null) {
      clearTimeout(this.deadline);
      this.deadline = null;
    }
  }

  private finish(complete: boolean): void {
    if (this.finished) return;
    this.finished = true;
    this.clearDeadline();
    const res = this.res!;
    res.removeListener('close', this.onClientClose);
    res.removeListener('drain', this.resume);
    this.tap?.end(complete);
    this.tap = null;
    if (complete) res.end();
  }
}
