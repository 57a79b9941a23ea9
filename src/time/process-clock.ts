/**
 * One simulated process's view of virtual time: a Scheduler on a shared
 * VirtualScheduler whose clock may run fast or slow and stand apart from
 * the others (skew), which can be paused (a SIGSTOP, a long GC: nothing it
 * scheduled runs, and what fell due runs late, in order, on resume) and
 * killed (everything it scheduled is dropped, as a process's timers die
 * with it). The simulation gives each member, meeting server and gateway
 * one, so a seed decides every clock and every pause.
 */
import type { Scheduler, TimerHandle } from "./scheduler.js";
import type { VirtualScheduler } from "./virtual-scheduler.js";

interface ClockTimer extends TimerHandle {
  inner: TimerHandle | undefined;
  cancelled: boolean;
  /** An interval's call is waiting for the process to resume. */
  queued: boolean;
}

export interface ProcessClockOptions {
  /** How fast this process's clock runs against virtual time (1 = exact; 1.01 = 1% fast). */
  readonly rate?: number;
  /** What this process's clock reads at the shared clock's current time, minus that time (ms). */
  readonly skewMs?: number;
}

export class ProcessClock implements Scheduler {
  private readonly rate: number;
  private readonly origin: number;
  private readonly base: number;
  private paused = false;
  private killed = false;
  /** Callbacks that fell due while paused, in the order they fell due. */
  private readonly late: (() => void)[] = [];
  private readonly live = new Set<ClockTimer>();

  constructor(
    private readonly world: VirtualScheduler,
    options: ProcessClockOptions = {},
  ) {
    this.rate = options.rate ?? 1;
    if (!(this.rate > 0)) throw new RangeError(`rate must be above 0, got ${this.rate}`);
    this.origin = world.now();
    this.base = this.origin + (options.skewMs ?? 0);
  }

  now(): number {
    return Math.floor(this.base + (this.world.now() - this.origin) * this.rate);
  }

  monotonic(): number {
    return this.base + (this.world.now() - this.origin) * this.rate;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Stops running this process's callbacks until resume(). */
  pause(): void {
    this.paused = true;
  }

  /** Runs what fell due meanwhile, in order, then carries on. */
  resume(): void {
    if (!this.paused || this.killed) return;
    this.paused = false;
    const due = this.late.splice(0);
    for (const fn of due) this.world.defer(() => this.run(fn));
  }

  /** The process died: nothing it scheduled will ever run. */
  kill(): void {
    this.killed = true;
    for (const t of this.live) this.world.clearTimeout(t.inner);
    this.live.clear();
    this.late.length = 0;
  }

  /** Runs `fn` as this process: now if it runs, on resume if paused, never if killed. */
  run(fn: () => void): void {
    if (this.killed) return;
    if (this.paused) this.late.push(fn);
    else fn();
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: ClockTimer = { inner: undefined, cancelled: false, queued: false, unref: () => timer };
    if (this.killed) return timer;
    this.live.add(timer);
    timer.inner = this.world.setTimeout(() => {
      this.live.delete(timer);
      this.run(() => timer.cancelled || fn());
    }, this.virtual(ms));
    return timer;
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    const timer: ClockTimer = { inner: undefined, cancelled: false, queued: false, unref: () => timer };
    if (this.killed) return timer;
    this.live.add(timer);
    timer.inner = this.world.setInterval(() => {
      // A paused process does not queue up one call per missed period: one, on resume.
      if (timer.cancelled || timer.queued) return;
      timer.queued = true;
      this.run(() => {
        timer.queued = false;
        if (!timer.cancelled) fn();
      });
    }, this.virtual(ms));
    return timer;
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (!handle) return;
    const timer = handle as ClockTimer;
    timer.cancelled = true;
    this.live.delete(timer);
    this.world.clearTimeout(timer.inner);
  }

  clearInterval(handle: TimerHandle | undefined): void {
    this.clearTimeout(handle);
  }

  defer(fn: () => void): void {
    if (this.killed) return;
    this.world.defer(() => this.run(fn));
  }

  /** Virtual milliseconds for `ms` of this process's clock. */
  private virtual(ms: number): number {
    const d = Number.isFinite(ms) && ms > 0 ? ms : 0;
    return d / this.rate;
  }
}
