import { performance } from 'node:perf_hooks';
import type { Socket } from 'node:net';
import type { KeyLookup } from '../auth/key-cache';
import type { WsConnection } from './connections';
import { CLOSE, closeFrame, FrameReader, maskedCloseFrame, type FrameViolation } from './frames';

/** What happened on a connection since its previous usage record. */
export type WsUsageDelta = {
  seq: number;
  final: boolean;
  durationMs: number;
  bytesIn: number;
  bytesOut: number;
  messagesIn: number;
  messagesOut: number;
  closeCode: number | null;
};

export type WsRelayOptions = {
  keyHash: string | null;
  stillAllowed: (lookup: KeyLookup) => boolean;
  maxFrameBytes: number;
  /** Interval of interim usage records. */
  usageIntervalMs: number;
  onUsage: (delta: WsUsageDelta) => void;
  /** Called once when both sides are gone. */
  onClosed: () => void;
};

/** After close frames are sent, how long the peers get to close before their sockets are destroyed. */
const CLOSE_WAIT_MS = 1000;

/**
 * Pipes an upgraded client socket and the upstream's both ways, unparsed, while two frame-header
 * readers count messages and bytes per direction and refuse what must not pass: unmasked client
 * frames, masked upstream frames, reserved opcodes, frames over the size limit (RFC 6455 §5).
 * Usage goes out as deltas: every interval while open, and once at the end.
 */
export class WsRelay implements WsConnection {
  readonly keyHash: string | null;
  private readonly fromClient: FrameReader;
  private readonly fromUpstream: FrameReader;
  private readonly started = performance.now();
  private reported = { at: this.started, bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0 };
  private seq = 0;
  private closed = false;
  private closeCode: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private client: Socket | null = null;
  private upstream: Socket | null = null;

  constructor(private readonly opts: WsRelayOptions) {
    this.keyHash = opts.keyHash;
    this.fromClient = new FrameReader({ masked: true, maxFrameBytes: opts.maxFrameBytes });
    this.fromUpstream = new FrameReader({ masked: false, maxFrameBytes: opts.maxFrameBytes });
  }

  stillAllowed(lookup: KeyLookup): boolean {
    return this.opts.stillAllowed(lookup);
  }

  /** Starts relaying: `clientHead`/`upstreamRest` are bytes each side sent along with its handshake. */
  start(client: Socket, upstream: Socket, clientHead: Buffer, upstreamRest: Buffer): void {
    this.client = client;
    this.upstream = upstream;
    client.setNoDelay(true);
    client.setTimeout(0);
    this.pipe(client, upstream, this.fromClient, 'client');
    this.pipe(upstream, client, this.fromUpstream, 'upstream');
    if (upstreamRest.length > 0) this.relay(upstreamRest, client, upstream, this.fromUpstream, 'upstream');
    if (clientHead.length > 0) this.relay(clientHead, upstream, client, this.fromClient, 'client');
    this.timer = setInterval(() => this.report(false), this.opts.usageIntervalMs);
    this.timer.unref();
    upstream.resume();
    client.resume();
  }

  /** Close frames to both sides (1008 for a revoked key, 1001 on shutdown), then the sockets go. */
  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closeCode ??= code;
    this.client?.end(closeFrame(code, reason));
    this.upstream?.end(maskedCloseFrame(code === CLOSE.policy ? CLOSE.goingAway : code, reason));
    this.teardown(false);
  }

  private pipe(src: Socket, dst: Socket, reader: FrameReader, side: 'client' | 'upstream'): void {
    src.on('data', (chunk: Buffer) => this.relay(chunk, dst, src, reader, side));
    dst.on('drain', () => src.resume());
    src.on('end', () => dst.end());
    src.on('error', () => this.teardown(true));
    src.on('close', () => this.teardown(false));
  }

  private relay(chunk: Buffer, dst: Socket, src: Socket, reader: FrameReader, side: 'client' | 'upstream'): void {
    if (this.closed) return;
    const violation = reader.push(chunk);
    if (violation !== null) return this.refuse(violation, side);
    if (reader.closeCode !== null) this.closeCode ??= reader.closeCode;
    if (!dst.write(chunk)) src.pause();
  }

  /** A frame that must not pass: the side that sent it gets a close frame naming why, the other a going-away. */
  private refuse(v: FrameViolation, side: 'client' | 'upstream'): void {
    this.closeCode = v.code;
    if (side === 'client') {
      this.client?.end(closeFrame(v.code, v.reason));
      this.upstream?.end(maskedCloseFrame(CLOSE.goingAway, 'client protocol error'));
    } else {
      this.client?.end(closeFrame(v.code === CLOSE.tooBig ? CLOSE.tooBig : 1014, 'upstream protocol error'));
      this.upstream?.destroy();
    }
    this.teardown(false);
  }

  private teardown(hard: boolean): void {
    if (this.closed) {
      if (hard) this.destroySockets();
      return;
    }
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    // Whatever was still in flight is not relayed; the sockets get a moment to flush close frames.
    if (hard) this.destroySockets();
    else setTimeout(() => this.destroySockets(), CLOSE_WAIT_MS).unref();
    this.client?.end();
    this.upstream?.end();
    this.report(true);
    this.opts.onClosed();
  }

  private destroySockets(): void {
    this.client?.destroy();
    this.upstream?.destroy();
  }

  private report(final: boolean): void {
    const now = performance.now();
    const r = this.reported;
    const delta: WsUsageDelta = {
      seq: this.seq++,
      final,
      durationMs: now - r.at,
      bytesIn: this.fromClient.bytes - r.bytesIn,
      bytesOut: this.fromUpstream.bytes - r.bytesOut,
      messagesIn: this.fromClient.messages - r.messagesIn,
      messagesOut: this.fromUpstream.messages - r.messagesOut,
      closeCode: final ? this.closeCode : null,
    };
    this.reported = {
      at: now,
      bytesIn: this.fromClient.bytes,
      bytesOut: this.fromUpstream.bytes,
      messagesIn: this.fromClient.messages,
      messagesOut: this.fromUpstream.messages,
    };
    this.opts.onUsage(delta);
  }
}
