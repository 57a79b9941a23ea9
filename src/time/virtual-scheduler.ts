/**
 * Virtual time: a Scheduler whose clock moves only when its owner says so.
 * Timers fire in (due time, order of scheduling) order, so a run is a pure
 * function of what was scheduled: the unit tests and the simulation drive
 * the real components with it instead of sleeping.
 *
 * Promise continuations (microtasks) of a timer's callback run before the
 * next timer fires: `advance` yields to the event loop between timers. Only
 * code on virtual time may run in that process meanwhile, or the order of
 * what happens is no longer decided by the schedule alone.
 */
import type { Scheduler, TimerHandle } from "./scheduler.js";

interface Timer extends TimerHandle {
  readonly seq: number;
  due: number;
  readonly fn: () => void;
  /** For intervals: the period; 0 for a one-shot timer. */
  readonly every: number;
  cancelled: boolean;
}

/** Lets every pending promise continuation run (the real event loop turns once). */
export function flushMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class VirtualScheduler implements Scheduler {
  private nowMs: number;
  private seq = 0;
  private readonly heap: Timer[] = [];

  constructor(startMs = 1_700_000_000_000) {
    this.nowMs = startMs;
  }

  now(): number {
    return this.nowMs;
  }

  monotonic(): number {
    return this.nowMs;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.add(fn, ms, 0);
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    return this.add(fn, ms, Math.max(1, ms));
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle) (handle as Timer).cancelled = true;
  }

  clearInterval(handle: TimerHandle | undefined): void {
    this.clearTimeout(handle);
  }

  defer(fn: () => void): void {
    this.add(fn, 0, 0);
  }

  /** Timers not yet fired or cancelled. */
  get pending(): number {
    return this.heap.filter((t) => !t.cancelled).length;
  }

  /** When the next timer is due, or undefined when none is. */
  nextDue(): number | undefined {
    this.dropCancelled();
    return this.heap[0]?.due;
  }

  /**
   * Runs the next due timer (at most `untilMs`), moving the clock to its due
   * time; false when none is due by then. Synchronous: promise
   * continuations of the callback have not run yet when it returns.
   */
  runNext(untilMs = Number.POSITIVE_INFINITY): boolean {
    this.dropCancelled();
    const timer = this.heap[0];
    if (!timer || timer.due > untilMs) return false;
    this.pop();
    if (timer.due > this.nowMs) this.nowMs = timer.due;
    if (timer.every > 0) {
      timer.due = this.nowMs + timer.every;
      this.push(timer);
    }
    timer.fn();
    return true;
  }

  /**
   * The process stood still for `ms` (a GC pause, SIGSTOP): the clock moves
   * on and no timer fires meanwhile; those that fell due fire late, at the
   * next advance.
   */
  stall(ms: number): void {
    this.nowMs += ms;
  }

  /** Moves the clock by `ms`, firing every timer due meanwhile in order, with their promise continuations. */
  async advance(ms: number): Promise<void> {
    await this.advanceTo(this.nowMs + ms);
  }

  async advanceTo(untilMs: number): Promise<void> {
    await flushMicrotasks();
    while (this.runNext(untilMs)) await flushMicrotasks();
    if (untilMs > this.nowMs) this.nowMs = untilMs;
  }

  private add(fn: () => void, ms: number, every: number): Timer {
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
    const timer: Timer = { seq: this.seq++, due: this.nowMs + delay, fn, every, cancelled: false, unref: () => timer };
    this.push(timer);
    return timer;
  }

  private dropCancelled(): void {
    while (this.heap.length > 0 && this.heap[0]!.cancelled) this.pop();
  }

  private before(a: Timer, b: Timer): boolean {
    return a.due < b.due || (a.due === b.due && a.seq < b.seq);
  }

  private push(timer: Timer): void {
    const h = this.heap;
    h.push(timer);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  private pop(): Timer | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.before(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}
