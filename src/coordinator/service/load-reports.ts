/**
 * The leader's memory of the load figures heartbeats carry, and the
 * `reportLoad` commands that put them into the replicated state.
 *
 * Heartbeats are not Raft writes (every node every 500 ms would be most of
 * the log); placement runs in apply, so the figures it reads must be in
 * the log. The middle way: the leader keeps the latest figures of each
 * node in memory and, at most every `everyMs`, proposes one command with
 * the nodes whose figures moved enough to matter since what the state
 * holds:
 *   - a change of at least `stepFraction` (5%) of the dimension's limit, or
 *     of its default scale when no limit is declared (node-load.ts);
 *   - any crossing of a declared limit, either way (a node over its limit
 *     must stop getting meetings at once, and get them again once under);
 *   - a node's first figures.
 * A steady cluster thus writes nothing, and a busy one at most one entry
 * per interval, however many nodes it has (up to MAX_LOAD_REPORTS a
 * command; the rest wait for the next). A new leader starts with an empty
 * memory and fills it from the next heartbeats. Below cluster version 3
 * (formats.ts) nothing is written: members of the previous release do not
 * know the command; the figures wait in memory until the version is raised.
 */
import { MOVES_AND_LOAD_VERSION } from "../formats.js";
import { MAX_LOAD_REPORTS, type LoadReport } from "../load-commands.js";
import { DEFAULT_SCALES, type LoadFigures, type NodeLimits } from "../node-load.js";
import { type Scheduler, type TimerHandle, realScheduler } from "../../time/scheduler.js";
import type { CoordinatorReplica } from "./coordinator-replica.js";

export interface LoadReportOptions {
  readonly everyMs: number;
  /** Default 0.05. */
  readonly stepFraction?: number;
  readonly onError?: (err: unknown) => void;
}

const DIMENSIONS = ["cpuPermille", "netInBytesPerSec", "netOutBytesPerSec", "participants"] as const;

/** Whether `next` differs from `written` enough to write it (see the file comment). */
export function changedEnough(written: LoadFigures & { reportedAtMs: number }, next: LoadFigures, limits: NodeLimits, stepFraction: number): boolean {
  let any = false;
  for (const d of DIMENSIONS) {
    const limit = limits[d];
    if (next[d] !== 0) any = true;
    if (limit > 0 && written[d] >= limit !== next[d] >= limit) return true;
    const scale = limit > 0 ? limit : DEFAULT_SCALES[d];
    if (Math.abs(next[d] - written[d]) >= stepFraction * scale) return true;
  }
  return written.reportedAtMs === 0 && any;
}

export class LoadReports {
  private readonly latest = new Map<string, LoadReport>();
  private timer: TimerHandle | undefined;
  private proposing = false;

  constructor(
    private readonly coordinator: CoordinatorReplica,
    private readonly options: LoadReportOptions,
    private readonly scheduler: Scheduler = realScheduler,
  ) {}

  startLeading(): void {
    this.stopLeading();
    this.timer = this.scheduler.setInterval(() => this.flush(), this.options.everyMs);
  }

  stopLeading(): void {
    this.scheduler.clearInterval(this.timer);
    this.timer = undefined;
    this.latest.clear();
  }

  /** A heartbeat's figures (already validated and rounded). */
  heard(report: LoadReport): void {
    if (this.timer) this.latest.set(report.nodeId, report);
  }

  /** Proposes the reports that changed enough; one proposal at a time. */
  flush(): void {
    if (this.proposing || this.latest.size === 0) return;
    const reports: LoadReport[] = [];
    const q = this.coordinator.local();
    if (q.clusterVersion < MOVES_AND_LOAD_VERSION) return;
    for (const [nodeId, report] of this.latest) {
      const node = q.getNode(nodeId);
      if (!node || node.generation !== report.generation || node.liveness === "DEAD") {
        this.latest.delete(nodeId);
        continue;
      }
      if (!changedEnough(node.load, report, node.limits, this.options.stepFraction ?? 0.05)) continue;
      reports.push(report);
      if (reports.length === MAX_LOAD_REPORTS) break;
    }
    if (reports.length === 0) return;
    this.proposing = true;
    this.coordinator
      .propose({ type: "reportLoad", reports })
      .catch((err: unknown) => this.options.onError?.(err))
      .finally(() => (this.proposing = false));
  }
}
