import type { CircuitBreakerPolicy } from '@tollgate/policy';

export type CircuitState = 'closed' | 'open' | 'half_open';

/**
 * One target's circuit, in one gateway process (ADR 0025). Closed: calls go through and their
 * outcomes are counted in one-second buckets over the window; once the window holds
 * `minRequests` calls and the failed share reaches `failureRatio`, it opens. Open: the target
 * gets no calls for `openSeconds`. Half-open: up to `halfOpenProbes` calls at once go through;
 * a failure reopens it, `halfOpenProbes` successes in a row close it.
 */
export class CircuitBreaker {
  state: CircuitState = 'closed';
  /** Date.now() ms until which an open circuit refuses. */
  openUntil = 0;
  private totals: Int32Array;
  private failures: Int32Array;
  private seconds: Float64Array;
  private inFlight = 0;
  private successes = 0;
  /** Probes not heard back from by then (a retry went elsewhere, a client left) free their slots. */
  private probeDeadline = 0;
  /** The second of the last failure counted in the window. */
  private lastFailure = -Infinity;

  constructor(
    public policy: CircuitBreakerPolicy,
    private readonly onChange?: (state: CircuitState) => void,
  ) {
    this.totals = new Int32Array(policy.windowSeconds);
    this.failures = new Int32Array(policy.windowSeconds);
    this.seconds = new Float64Array(policy.windowSeconds).fill(-1);
  }

  /** A new policy for the same target (a snapshot swap): the counts start over only if the window changed. */
  setPolicy(p: CircuitBreakerPolicy): void {
    if (p.windowSeconds !== this.policy.windowSeconds) {
      this.totals = new Int32Array(p.windowSeconds);
      this.failures = new Int32Array(p.windowSeconds);
      this.seconds = new Float64Array(p.windowSeconds).fill(-1);
    }
    this.policy = p;
  }

  /** Whether a call may not go to this target now (no side effects: the balancer asks about every candidate). */
  refusing(now: number): boolean {
    if (this.state === 'closed') return false;
    if (this.state === 'open') return now < this.openUntil;
    return this.inFlight >= this.policy.halfOpenProbes && now < this.probeDeadline;
  }

  /** The balancer chose this target for a call. */
  picked(now: number): void {
    if (this.state === 'open') {
      if (now < this.openUntil) return;
      this.transition('half_open');
      this.inFlight = 0;
      this.successes = 0;
    }
    if (this.state === 'half_open') {
      if (now >= this.probeDeadline) this.inFlight = 0;
      this.inFlight++;
      this.probeDeadline = now + this.policy.openSeconds * 1000;
    }
  }

  /** A call's outcome: failed = a 5xx answer, a timeout or a connection failure. */
  record(failed: boolean, now: number): void {
    if (this.state === 'half_open') {
      if (this.inFlight > 0) this.inFlight--;
      if (failed) this.open(now);
      else if (++this.successes >= this.policy.halfOpenProbes) {
        this.clear();
        this.transition('closed');
      }
      return;
    }
    // Calls that were on their way when the circuit opened tell nothing new.
    if (this.state === 'open') return;
    const n = this.policy.windowSeconds;
    const sec = Math.floor(now / 1000);
    const i = sec % n;
    if (this.seconds[i] !== sec) {
      this.seconds[i] = sec;
      this.totals[i] = 0;
      this.failures[i] = 0;
    }
    this.totals[i]!++;
    if (failed) {
      this.failures[i]!++;
      this.lastFailure = sec;
    } else if (sec - this.lastFailure >= n) return; // no failure in the window: nothing to add up
    let total = 0;
    let bad = 0;
    for (let k = 0; k < n; k++) {
      if (this.seconds[k]! > sec - n) {
        total += this.totals[k]!;
        bad += this.failures[k]!;
      }
    }
    if (total >= this.policy.minRequests && bad / total >= this.policy.failureRatio) this.open(now);
  }

  private open(now: number): void {
    this.openUntil = now + this.policy.openSeconds * 1000;
    this.inFlight = 0;
    this.successes = 0;
    this.clear();
    this.transition('open');
  }

  private clear(): void {
    this.seconds.fill(-1);
  }

  private transition(s: CircuitState): void {
    if (this.state === s) return;
    this.state = s;
    this.onChange?.(s);
  }
}
