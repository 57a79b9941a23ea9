/**
 * A call that needs the leader while no leader is known (an election under
 * way) is held until one is elected, for at most LEADER_HOLD_MS and never
 * past the caller's deadline, as Consul holds RPCs for its
 * rpc_hold_timeout: an election here takes a second or two, and a caller
 * answered UNAVAILABLE at once would only retry into the same election.
 * A call its leader refused as not leading (it ran nothing there) goes to
 * the next leader within the same hold.
 *
 * Time comes from the member's Scheduler, so the simulation runs this very
 * loop on virtual time; the gRPC forwarder (leader-forwarder.ts) supplies
 * how a call is sent.
 */
import type { Scheduler } from "../time/scheduler.js";

/** The longest a call waits for a leader to be elected before it is answered UNAVAILABLE. */
export const LEADER_HOLD_MS = 3_000;
/** A held call gives up this long before its caller's deadline, so the caller still hears why. */
export const HOLD_MARGIN_MS = 100;
/** After a refusal, the longest to wait for news of the next leader before trying again. */
const RETRY_WAIT_MS = 250;

/**
 * Whether a forwarded call of `method` is held while no leader is known.
 * Heartbeats are not: one is worth only until the next, an interval later,
 * and an agent answered UNAVAILABLE at once tries its next member, which
 * may know the leader (a member cut off from the others knows none). Held
 * here, the beat would reach no leader before the failure detector expects
 * the next one, and a server whose streams the leader cannot see would be
 * declared dead while it heartbeats on time.
 */
export function holdsForLeader(method: string): boolean {
  return method !== "Heartbeat";
}

/** What the hold needs of the member's Raft driver. */
export interface LeaderWatch {
  /** Where the leader is reached, or "" when none is known. */
  leaderAddress(): string;
  on(event: "leader", listener: () => void): unknown;
  off(event: "leader", listener: () => void): unknown;
}

export interface HeldCall<T> {
  /** Sends the call to the leader at `address`. */
  send(address: string): Promise<T>;
  /** Whether a failed send was refused because its member did not lead (so nothing ran). */
  refusedAsNotLeader(err: unknown): boolean;
  /** The error to answer with when no leader is known at the hold's end. */
  noLeader(): unknown;
  /** Whether to hold at all: a member's own reports are not held, their sender retries. */
  readonly hold: boolean;
  /** The caller's deadline on the member's clock (ms); Infinity when it set none. */
  readonly callerDeadlineMs: number;
  /** Whether the caller has gone away. */
  cancelled(): boolean;
}

/** How often the hold came into play. */
export interface HoldCounts {
  /** Calls that found no leader known and waited for one. */
  held: number;
  /** Sends after a member refused the call as not leading. */
  resent: number;
}

export class LeaderHold {
  /** The held calls' wake-ups, called at the next change of leader. */
  private readonly waiting = new Set<() => void>();

  constructor(
    private readonly watch: LeaderWatch,
    private readonly clock: Scheduler,
    readonly counts: HoldCounts = { held: 0, resent: 0 },
  ) {}

  /** When a call that starts now stops waiting for a leader. */
  holdEnd(callerDeadlineMs: number): number {
    return Math.min(this.clock.now() + LEADER_HOLD_MS, callerDeadlineMs - HOLD_MARGIN_MS);
  }

  /** Sends `call` to the leader, holding it while none is known (see the file comment). */
  async call<T>(call: HeldCall<T>): Promise<T> {
    const until = call.hold ? this.holdEnd(call.callerDeadlineMs) : -Infinity;
    for (;;) {
      // The leader may be this member, elected since the call failed here: the call then comes back here and runs.
      let address = this.watch.leaderAddress();
      if (address === "") {
        this.counts.held++;
        address = await this.leaderElectedBy(until);
      }
      if (!address) throw call.noLeader();
      try {
        return await call.send(address);
      } catch (err) {
        if (!call.refusedAsNotLeader(err) || this.clock.now() >= until || call.cancelled()) throw err;
        await this.leaderChangeBy(Math.min(until, this.clock.now() + RETRY_WAIT_MS));
        this.counts.resent++;
      }
    }
  }

  /** The leader's address once one is known, or "" at `untilMs`. */
  private async leaderElectedBy(untilMs: number): Promise<string> {
    while (this.watch.leaderAddress() === "" && this.clock.now() < untilMs) await this.leaderChangeBy(untilMs);
    return this.watch.leaderAddress();
  }

  /** Resolves at the next change of leader this member sees, or at `untilMs`. */
  private leaderChangeBy(untilMs: number): Promise<void> {
    const { clock } = this;
    return new Promise((resolve) => {
      const done = (): void => {
        clock.clearTimeout(timer);
        this.waiting.delete(done);
        if (this.waiting.size === 0) this.watch.off("leader", this.wake);
        resolve();
      };
      const timer = clock.setTimeout(done, Math.max(0, untilMs - clock.now()));
      // One listener on the driver however many calls are held (an election can hold hundreds).
      if (this.waiting.size === 0) this.watch.on("leader", this.wake);
      this.waiting.add(done);
    });
  }

  private readonly wake = (): void => {
    for (const done of [...this.waiting]) done();
  };
}
