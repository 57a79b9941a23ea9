/**
 * The per-client limit on creating meetings: a token bucket per remote IP,
 * `perMinute` tokens refilled evenly over a minute, holding at most `burst`.
 * A request that would create a meeting takes a token first and gives it
 * back when the coordinator answers that the meeting existed already, so
 * joining existing meetings is never limited, and a scanner of random ids
 * cannot fill the cluster. Pure: the caller passes the clock.
 */

interface Bucket {
  tokens: number;
  updatedMs: number;
}

/** Buckets that refilled completely are dropped by a sweep at most this often. */
const SWEEP_EVERY_MS = 60_000;

export class CreateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;
  private lastSweepMs = 0;

  constructor(
    perMinute: number,
    private readonly burst: number = perMinute,
  ) {
    if (!(perMinute > 0) || !(burst >= 1)) throw new Error(`invariant: a create limiter needs perMinute > 0 and burst ≥ 1, got ${perMinute}, ${burst}`);
    this.perMs = perMinute / 60_000;
  }

  /**
   * Takes one token of `client`. Returns 0 when granted, else the whole
   * seconds until a token will be there (for Retry-After).
   */
  take(client: string, nowMs: number): number {
    this.maybeSweep(nowMs);
    const b = this.refilled(client, nowMs);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.perMs / 1000));
  }

  /** Gives back a token taken for a creation that did not happen. */
  refund(client: string, nowMs: number): void {
    const b = this.refilled(client, nowMs);
    b.tokens = Math.min(this.burst, b.tokens + 1);
  }

  /** Clients with a bucket (for tests and the dashboard). */
  get clients(): number {
    return this.buckets.size;
  }

  private refilled(client: string, nowMs: number): Bucket {
    let b = this.buckets.get(client);
    if (!b) {
      b = { tokens: this.burst, updatedMs: nowMs };
      this.buckets.set(client, b);
      return b;
    }
    const elapsed = Math.max(0, nowMs - b.updatedMs);
    b.tokens = Math.min(this.burst, b.tokens + elapsed * this.perMs);
    b.updatedMs = nowMs;
    return b;
  }

  private maybeSweep(nowMs: number): void {
    if (nowMs - this.lastSweepMs < SWEEP_EVERY_MS) return;
    this.lastSweepMs = nowMs;
    for (const [client, b] of this.buckets) {
      if (b.tokens + (nowMs - b.updatedMs) * this.perMs >= this.burst) this.buckets.delete(client);
    }
  }
}
