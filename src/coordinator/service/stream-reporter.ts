/**
 * Carries a member's watch-stream counts (node-streams.ts) to the leader's
 * failure detector: straight in when this member leads, else forwarded
 * (MemberAdmin.NodeConnection). A new leader gets the whole table; a
 * report that did not arrive is replaced by a whole table, retried until
 * the leader has it, since a count the leader missed could make a node's
 * last stream look closed when it is not. A report goes missing either
 * unanswered within `reportTimeoutMs` (noticed here) or with a later one
 * answered (the leader notices the skipped number and answers `resync`).
 *
 * Created by CoordinatorApp.attach after the detector's own leader
 * listener, so a member that starts to lead resets its detector first,
 * then reports its own table into it.
 */
import type { RaftDriver } from "../../raft-runtime/driver.js";
import type { Scheduler, TimerHandle } from "../../time/scheduler.js";
import type { FailureDetector } from "./failure-detector.js";
import { LocalStreams, type StreamReport, type StreamReportAnswer } from "./node-streams.js";

/** Between two attempts to give the leader a whole table. */
const RESYNC_RETRY_MS = 200;

/** Sends a report to the leader within `timeoutMs`; resolves with the leader's answer. */
export type ReportForward = (report: StreamReport, timeoutMs: number) => Promise<unknown>;

export class StreamReporter {
  readonly local: LocalStreams;
  private retry: TimerHandle | undefined;
  private stopped = false;
  private readonly onLeader = (): void => this.resyncSoon(0);

  constructor(
    private readonly raft: RaftDriver,
    private readonly detector: FailureDetector,
    private readonly forward: ReportForward,
    private readonly scheduler: Scheduler,
    /** How long a forwarded report may go unanswered before it counts as lost (about a heartbeat interval). */
    private readonly reportTimeoutMs: number,
  ) {
    // Sequences start above any this member sent before a restart.
    this.local = new LocalStreams(raft.id, (report) => this.send(report), scheduler.now() * 1000);
    raft.on("leader", this.onLeader);
  }

  stop(): void {
    this.stopped = true;
    this.raft.off("leader", this.onLeader);
    this.scheduler.clearTimeout(this.retry);
  }

  private send(report: StreamReport): void {
    if (this.stopped) return;
    if (this.raft.isLeader()) {
      if (this.detector.streamsReported(report).resync) this.resyncSoon(0);
      return;
    }
    if (this.raft.status().lead === "") {
      // Nobody to tell; the next leader gets the whole table.
      return;
    }
    this.deliver(report);
  }

  private deliver(report: StreamReport): void {
    this.forward(report, this.reportTimeoutMs).then(
      (answer) => {
        if ((answer as Partial<StreamReportAnswer> | undefined)?.resync === true) this.resyncSoon(0);
      },
      () => this.resyncSoon(RESYNC_RETRY_MS),
    );
  }

  private resyncSoon(delayMs: number): void {
    if (this.stopped) return;
    this.scheduler.clearTimeout(this.retry);
    this.retry = this.scheduler.setTimeout(() => {
      this.retry = undefined;
      if (this.stopped || this.raft.status().lead === "") return;
      const report = this.local.resync();
      if (this.raft.isLeader()) this.detector.streamsReported(report);
      else this.deliver(report);
    }, delayMs);
  }
}

/** The NodeConnection request that carries `report`. */
export function reportMessage(report: StreamReport): Record<string, unknown> {
  return {
    member_id: report.memberId,
    resync: report.resync,
    sequence: report.sequence,
    counts: report.counts.map((c) => ({ node_id: c.nodeId, generation: c.generation, open_streams: c.open, sequence: c.sequence })),
  };
}
