/**
 * Warns when a member's event loop was blocked (a timer fired `slowMs` or
 * more late), with the Raft state at that moment and what the
 * process did meanwhile: a member blocked for a second stalls its peers'
 * streams and misses heartbeats (a leader then loses its check-quorum), so
 * the log says when it happened, at which index, and whether the time went
 * to JavaScript and garbage collection or the process was not running.
 */
import { PerformanceObserver } from "node:perf_hooks";
import type { Logger } from "pino";

export interface LoopWatchStatus {
  applied: number;
  commit: number;
  snapshotIndex: number;
}

/** Returns a function that stops the watch. */
export function watchEventLoop(logger: Pick<Logger, "warn">, status: () => LoopWatchStatus, slowMs: number): () => void {
  // Lateness is measured, not sampled, so a timer every half of the
  // threshold sees every block of the threshold; more wakes would only
  // cost an idle member CPU.
  const everyMs = Math.max(50, Math.floor(slowMs / 2));
  let gcMs = 0;
  // GC entries arrive after the pause they measure, so a pause at the end
  // of a block may be counted with the next window.
  const gc = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcMs += entry.duration;
  });
  gc.observe({ entryTypes: ["gc"] });
  let expected = performance.now() + everyMs;
  let cpu = process.cpuUsage();
  let gcMsBefore = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    const lateMs = Math.round(now - expected);
    expected = now + everyMs;
    const cpuBefore = cpu;
    cpu = process.cpuUsage();
    if (lateMs >= slowMs) {
      const { applied, commit, snapshotIndex } = status();
      logger.warn(
        {
          blockedMs: lateMs,
          // Every thread of the process: LevelDB's compactions and the
          // snapshot writer count too. Far less than blockedMs means the
          // process was waiting (descheduled by a busy host, or in a
          // blocking system call), not computing.
          cpuMs: Math.round((cpu.user - cpuBefore.user + cpu.system - cpuBefore.system) / 1000),
          gcMs: Math.round(gcMs - gcMsBefore),
          applied,
          commit,
          snapshotIndex,
        },
        "event loop was blocked",
      );
    }
    gcMsBefore = gcMs;
  }, everyMs).unref();
  return () => {
    clearInterval(timer);
    gc.disconnect();
  };
}
