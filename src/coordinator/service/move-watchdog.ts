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
 *
 * It sleeps until the next deadline rather than polling, and looks again
 * soon after every change of the replicated state (`stateChanged`): a new
 * move or drain brings its deadline, and whether a drain past its deadline
 * has a meeting to hand over depends on the state alone (room elsewhere),
 * which only an apply changes. While something is due and not yet applied
 * it looks every `checkEveryMs`, as a failed proposal must be retried.
 */
import { DeadlineTimer } from "../../time/deadline-timer.js";
import { type Scheduler, realScheduler } from "../../time/scheduler.js";
import type { CoordinatorReplica } from "./coordinator-replica.js";

export interface MoveWatchdogOptions {
  /** The shortest sleep between two checks: how late past a deadline its proposal may be. */
  readonly checkEveryMs: number;
  /** The hand-over timeout drainDue gives each meeting. */
  readonly moveTimeoutMs: number;
  readonly onError?: (err: unknown) => void;
}

export class MoveWatchdog {
  private readonly wake: DeadlineTimer;
  private leading = false;
  /** Proposals in flight, so a slow commit is not proposed twice. */
  private readonly proposing = new Set<string>();

  constructor(
    private readonly coordinator: CoordinatorReplica,
    private readonly options: MoveWatchdogOptions,
    private readonly scheduler: Scheduler = realScheduler,
  ) {
    this.wake = new DeadlineTimer(scheduler, () => this.check());
  }

  startLeading(): void {
    this.stopLeading();
    this.leading = true;
    this.checkSoon();
  }

  stopLeading(): void {
    this.leading = false;
    this.wake.cancel();
    this.proposing.clear();
  }

  /** The replicated state changed (an apply or a restore). */
  stateChanged(): void {
    if (this.leading) this.checkSoon();
  }

  private checkSoon(): void {
    this.wake.wakeAt(this.scheduler.now() + this.options.checkEveryMs);
  }

  check(): void {
    const now = this.scheduler.now();
    const q = this.coordinator.local();
    let due = false;
    let next = q.nextDrainDeadline(now) ?? Number.POSITIVE_INFINITY;
    for (const m of q.pendingMoves()) {
      if (m.deadlineMs <= now) {
        due = true;
        this.propose(`expire ${m.meetingId}@${m.epoch}`, { type: "expireMove", meetingId: m.meetingId, epoch: m.epoch });
      } else {
        next = Math.min(next, m.deadlineMs);
      }
    }
    for (const nodeId of q.dueDrains(now)) {
      due = true;
      this.propose(`drain ${nodeId}`, { type: "drainDue", nodeId, timeoutMs: this.options.moveTimeoutMs });
    }
    if (!this.leading) return;
    if (due) this.checkSoon();
    else if (next !== Number.POSITIVE_INFINITY) this.wake.wakeAt(Math.max(now + this.options.checkEveryMs, next));
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
