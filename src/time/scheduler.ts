/**
 * Time, timers and deferred work as one injected dependency. Every
 * component above the pure core that waits or reads the clock (the Raft
 * driver, the failure detector, the node agent's loops, the gateway's
 * route cache) takes a Scheduler, so the same code runs on the machine's
 * clock in production and on virtual time in tests and in the simulation
 * (src/time/virtual-scheduler.ts), where one seed decides every ordering.
 */

/** What `setTimeout` and friends return; opaque to callers. */
export interface TimerHandle {
  /** Keeps the process from exiting for this timer (a no-op on virtual time). */
  unref?(): unknown;
}

export interface Scheduler {
  /** Milliseconds since the epoch (wall time in production). */
  now(): number;
  /** A monotonic clock in milliseconds, for measuring durations. */
  monotonic(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
  setInterval(fn: () => void, ms: number): TimerHandle;
  clearInterval(handle: TimerHandle | undefined): void;
  /** Runs `fn` once the current work is done, before any timer that is due later (setImmediate). */
  defer(fn: () => void): void;
}

/** The machine's clock and Node's timers. */
export const realScheduler: Scheduler = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout | undefined),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout | undefined),
  defer: (fn) => void setImmediate(fn),
};

/** Resolves after `ms` on the scheduler's clock. */
export function sleepOn(scheduler: Scheduler, ms: number): Promise<void> {
  return new Promise((resolve) => scheduler.setTimeout(resolve, ms));
}
