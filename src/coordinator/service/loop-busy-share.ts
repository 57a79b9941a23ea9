/**
 * The share of wall time this process's event loop spent running (not
 * waiting in the poller) since the previous call: Node's event-loop
 * utilization. Near 1 means work waits in the queue, heartbeats included.
 */
import { performance } from "node:perf_hooks";

export function loopBusyShareMeter(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const share = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    return Number.isFinite(share) ? share : 0;
  };
}
