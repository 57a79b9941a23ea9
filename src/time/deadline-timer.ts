/**
 * One timer for the earliest of the times asked of it. A leader's checks
 * that only matter near a deadline (the failure detector, the move
 * watchdog) sleep until the next one instead of polling: every wake of an
 * idle process costs CPU, and polling every 50 ms was most of an idle
 * leader's wakes.
 */
import type { Scheduler, TimerHandle } from "./scheduler.js";

export class DeadlineTimer {
  private handle: TimerHandle | undefined;
  private dueAtMs = Number.POSITIVE_INFINITY;

  /** `run` gets the time it was due at (scheduler.now() clock), so it can tell how late it runs. */
  constructor(
    private readonly scheduler: Pick<Scheduler, "now" | "setTimeout" | "clearTimeout">,
    private readonly run: (dueAtMs: number) => void,
  ) {}

  /** Runs at `atMs` unless it is already due earlier; a time in the past runs it at once. */
  wakeAt(atMs: number): void {
    if (this.handle !== undefined && this.dueAtMs <= atMs) return;
    this.scheduler.clearTimeout(this.handle);
    this.dueAtMs = atMs;
    this.handle = this.scheduler.setTimeout(() => {
      const due = this.dueAtMs;
      this.handle = undefined;
      this.dueAtMs = Number.POSITIVE_INFINITY;
      this.run(due);
    }, Math.max(0, atMs - this.scheduler.now()));
  }

  cancel(): void {
    this.scheduler.clearTimeout(this.handle);
    this.handle = undefined;
    this.dueAtMs = Number.POSITIVE_INFINITY;
  }
}
