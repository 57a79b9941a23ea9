/**
 * Which coordinator member a client talks to now, for clients that send
 * every call to one member and move to the next when it fails (the node
 * agent, the gateway): the current member, rotation that happens once per
 * failed member however many calls saw it fail, jittered exponential
 * backoff between full rounds, and sleeps that end early when the client
 * closes.
 */
import { type Scheduler, realScheduler } from "../time/scheduler.js";
export interface BackoffOptions {
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
}

export class MemberCursor {
  private index: number;
  private readonly sleepers = new Set<() => void>();
  private closedFlag = false;

  constructor(
    readonly addresses: readonly string[],
    private readonly backoff: BackoffOptions,
    private readonly random: () => number = Math.random,
    /** The sleeps' timers (virtual time in the simulation). */
    private readonly scheduler: Pick<Scheduler, "setTimeout" | "clearTimeout"> = realScheduler,
  ) {
    if (addresses.length === 0) throw new Error("invariant: a coordinator client needs at least one member address");
    // Clients start on a random member so that many of them spread over the group.
    this.index = Math.floor(this.random() * addresses.length) % addresses.length;
  }

  /** The member calls go to now. */
  get address(): string {
    return this.addresses[this.index]!;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Moves to the next member unless another failure already moved away from `failed`; whether it moved. */
  rotateFrom(failed: string): boolean {
    if (this.address !== failed || this.addresses.length === 1) return false;
    this.index = (this.index + 1) % this.addresses.length;
    return true;
  }

  /** Makes `address` current if it is one of the members; whether it moved. */
  moveTo(address: string): boolean {
    const index = this.addresses.indexOf(address);
    if (index < 0 || index === this.index) return false;
    this.index = index;
    return true;
  }

  /** Jittered exponential backoff after `round` ≥ 1 full rounds of failures: in [d/2, d). */
  backoffMs(round: number): number {
    const d = Math.min(this.backoff.retryMaxMs, this.backoff.retryBaseMs * 2 ** Math.max(0, Math.min(round - 1, 20)));
    return Math.max(1, Math.floor(d / 2 + (this.random() * d) / 2));
  }

  /** Resolves after `ms`, or rejects with `stopped()` as soon as the cursor closes. */
  sleep(ms: number, stopped: () => Error): Promise<void> {
    if (this.closedFlag) return Promise.reject(stopped());
    return new Promise<void>((resolve, reject) => {
      const wake = (): void => {
        this.scheduler.clearTimeout(timer);
        this.sleepers.delete(wake);
        if (this.closedFlag) reject(stopped());
        else resolve();
      };
      const timer = this.scheduler.setTimeout(wake, ms);
      timer.unref?.();
      this.sleepers.add(wake);
    });
  }

  /** Wakes every sleeper (they reject); later sleeps reject at once. */
  close(): void {
    this.closedFlag = true;
    for (const wake of [...this.sleepers]) wake();
  }
}
