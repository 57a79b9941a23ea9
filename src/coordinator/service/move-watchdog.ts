/**
 * The leader's clock for planned moves and planned drains: deadlines are
 * in the replicated state, but only a command moves time there, so the
 * leader proposes
 *   - expireMove for each hand-over whose deadline has passed (the owner
 *     did not answer: the meeting moves as in a failover), and
 *   - drainDue for each draining node past its drain deadline that still
 *     owns meetings another node could take (they are handed over).
 * Apply checks the deadline again against the command's time, so a
 * proposal from a leader whose clock runs ahead is refused, not obeyed.
 * A new leader picks up where the old one stopped: the deadlines are in
 * the state it applied.
 */
import { type Scheduler, type TimerHandle, realScheduler } from "../../time/scheduler.js";
import type { CoordinatorReplica } from "./coordinator-replica.js";

export interface MoveWatchdogOptions {
  readonly checkEveryMs: number;
  /** The hand-over timeout drainDue gives each meeting. */
  readonly moveTimeoutMs: number;
  readonly onError?: (err: unknown) => void;
}

export class MoveWatchdog {
  private timer: TimerHandle | undefined;
  /** Proposals in flight, so a slow commit is not proposed twice. */
  private readonly proposing = new Set<string>();

  constructor(
    private readonly coordinator: CoordinatorReplica,
    private readonly options: MoveWatchdogOptions,
    private readonly scheduler: Scheduler = realScheduler,
  ) {}

  startLeading(): void {
    this.stopLeading();
    this.timer = this.scheduler.setInterval(() => this.check(), this.options.checkEveryMs);
  }

  stopLeading(): void {
    this.scheduler.clearInterval(this.timer);
    this.timer = undefined;
    this.proposing.clear();
  }

  check(): void {
    const now = this.scheduler.now();
    const q = this.coordinator.local();
    for (const m of q.pendingMoves()) {
      if (m.deadlineMs <= now) this.propose(`expire ${m.meetingId}@${m.epoch}`, { type: "expireMove", meetingId: m.meetingId, epoch: m.epoch });
    }
    for (const nodeId of q.dueDrains(now)) {
      this.propose(`drain ${nodeId}`, { type: "drainDue", nodeId, timeoutMs: this.options.moveTimeoutMs });
    }
  }

  private propose(key: string, proposal: Parameters<CoordinatorReplica["propose"]>[0]): void {
    if (this.proposing.has(key)) return;
    this.proposing.add(key);
    this.coordinator
      .propose(proposal)
      .catch((err: unknown) => this.options.onError?.(err))
      .finally(() => this.proposing.delete(key));
  }
}
