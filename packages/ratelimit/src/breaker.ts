import type { Cluster, Redis } from 'ioredis';

export type BreakerState = 'closed' | 'open' | 'half_open';
export type BreakerOpenReason = 'failures' | 'ping' | 'disconnected';

export type RedisBreakerOptions = {
  /** The request path's connection: its own events and a health ping tell whether Redis answers. */
  redis: Redis | Cluster;
  /** Consecutive failed round trips (an error, or no answer within the wait bound) that open it. Default 5. */
  failures?: number;
  /** Open this long before one probe call may try Redis again. Default 1000 ms. */
  cooldownMs?: number;
  /** A PING this often (0 = none). Default 1000 ms. */
  pingIntervalMs?: number;
  /** A PING not answered within this long opens the breaker. Default 2000 ms. */
  pingTimeoutMs?: number;
  onChange?: (state: BreakerState, reason: BreakerOpenReason | 'probe_ok' | 'ping_ok') => void;
};

/**
 * Whether Redis is available to the request path (docs/adr/0020). Limits fall back to the API's
 * fail mode only while this is open — Redis unreachable, N consecutive round trips failed or
 * timed out, or a health ping went unanswered — never because one reply was slow on a busy
 * process: such a reply is waited for within a bound (the limiter's `timeoutMs`).
 *
 * closed: every call goes to Redis. open: none does (the fail mode decides at once, without a
 * wait). After `cooldownMs` it goes half-open: one call probes Redis (the rest still fall back);
 * its success closes the breaker, its failure opens it again. A PING that answers while open
 * also moves it to half-open once the cooldown is over.
 */
export class RedisBreaker {
  state: BreakerState = 'closed';
  /** Times it opened, for metrics. */
  opened = 0;
  private consecutive = 0;
  private openedAt = 0;
  private probing = false;
  private pingTimer: NodeJS.Timeout | null = null;
  private pinging = false;
  private readonly failuresToOpen: number;
  private readonly cooldownMs: number;
  private readonly pingTimeoutMs: number;
  private readonly onDisconnect = () => this.open('disconnected');

  constructor(private readonly opts: RedisBreakerOptions) {
    this.failuresToOpen = opts.failures ?? 5;
    this.cooldownMs = opts.cooldownMs ?? 1000;
    this.pingTimeoutMs = opts.pingTimeoutMs ?? 2000;
    opts.redis.on('close', this.onDisconnect);
    const every = opts.pingIntervalMs ?? 1000;
    if (every > 0) {
      this.pingTimer = setInterval(() => this.ping(), every);
      this.pingTimer.unref();
    }
  }

  /** May this call go to Redis? Closed: yes. Open: no, except one probe once the cooldown is over. */
  allow(): boolean {
    if (this.state === 'closed') return true;
    if (this.state === 'open') {
      if (performance.now() - this.openedAt < this.cooldownMs) return false;
      this.state = 'half_open';
    }
    if (this.probing) return false;
    this.probing = true;
    return true;
  }

  /** A round trip that Redis answered (whatever the answer). */
  success(): void {
    this.consecutive = 0;
    if (this.state !== 'closed') {
      this.state = 'closed';
      this.probing = false;
      this.opts.onChange?.('closed', 'probe_ok');
    }
  }

  /** A round trip that failed or outlasted its bound. */
  failure(): void {
    this.consecutive++;
    if (this.state === 'half_open') this.open('failures');
    else if (this.state === 'closed' && this.consecutive >= this.failuresToOpen) this.open('failures');
  }

  open(reason: BreakerOpenReason): void {
    this.openedAt = performance.now();
    this.probing = false;
    if (this.state === 'open') return;
    this.state = 'open';
    this.opened++;
    this.opts.onChange?.('open', reason);
  }

  private ping(): void {
    if (this.pinging) return;
    const c = this.opts.redis;
    if (c.status !== 'ready' && !(c.isCluster && c.status === 'connect')) {
      this.open('disconnected');
      return;
    }
    this.pinging = true;
    let done = false;
    // Judged after the turn's I/O (setImmediate): a PONG already on the socket of a process that
    // was busy for a while is read first, so lateness of our own doesn't open the breaker.
    const timer = setTimeout(
      () =>
        setImmediate(() => {
          if (done) return;
          done = true;
          this.pinging = false;
          this.open('ping');
        }),
      this.pingTimeoutMs,
    );
    timer.unref();
    c.ping().then(
      () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.pinging = false;
        if (this.state === 'open' && performance.now() - this.openedAt >= this.cooldownMs) {
          this.state = 'half_open';
          this.probing = false;
          this.opts.onChange?.('half_open', 'ping_ok');
        }
      },
      () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.pinging = false;
        this.open('ping');
      },
    );
  }

  stop(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
    this.opts.redis.off('close', this.onDisconnect);
  }
}
