/**
 * The coordinator's member-side core, apart from any transport: the
 * replica (typed proposals), the leader's failure detector and the watch
 * stream counts that feed it, the node agent calls, the leader's move
 * watchdog (hand-over and drain deadlines) and load reports, and its
 * placing of meetings that wait for room, wired to the Raft member's
 * leadership, all on the injected scheduler. CoordinatorApp puts gRPC services around it; the
 * whole-product simulation drives it directly, on virtual time.
 */
import type { Logger } from "pino";
import type { RaftDriver } from "../../raft-runtime/driver.js";
import { DeadlineTimer } from "../../time/deadline-timer.js";
import type { Scheduler } from "../../time/scheduler.js";
import type { CoordinatorStateMachine } from "../coordinator-state-machine.js";
import { CoordinatorReplica } from "./coordinator-replica.js";
import type { CoordinatorStats } from "./coordinator-stats.js";
import { type DetectorBugs, FailureDetector } from "./failure-detector.js";
import { LoadReports } from "./load-reports.js";
import { MoveWatchdog } from "./move-watchdog.js";
import { type AgentTimings, NodeAgentCore } from "./node-agent-core.js";
import type { NodeAddressCheck } from "./node-address-check.js";
import type { StreamReport, StreamReportAnswer } from "./node-streams.js";
import { type ReportForward, StreamReporter } from "./stream-reporter.js";
import type { WatchHub } from "./watch-hub.js";

export interface CoreTimings extends AgentTimings {
  readonly disconnectGraceMs: number;
  /** The hand-over timeout a drain past its deadline gives each meeting. */
  readonly moveTimeoutMs: number;
  /** At most one reportLoad command this often (load-reports.ts). */
  readonly loadReportMs: number;
}

/** How often the leader places meetings left waiting for room. */
const PLACE_EVERY_MS = 500;

export class CoordinatorCore {
  readonly replica: CoordinatorReplica;
  readonly detector: FailureDetector;
  readonly watchdog: MoveWatchdog;
  readonly loads: LoadReports;
  readonly streams: StreamReporter;
  readonly agents: NodeAgentCore;
  private readonly placer: { startLeading(): void; stopLeading(): void };
  private readonly onLeader: (change: { isSelf: boolean }) => void;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly deps: {
      raft: RaftDriver;
      machine: CoordinatorStateMachine;
      watches: WatchHub;
      timings: CoreTimings;
      scheduler: Scheduler;
      /** Carries this member's stream counts to the leader when another member leads. */
      forwardStreamReport: ReportForward;
      stats: CoordinatorStats;
      logger: Logger;
      addressCheck?: NodeAddressCheck;
      /** Test-only planted bugs (the simulation's knobs); none in production. */
      detectorBugs?: DetectorBugs;
      /** This process's event-loop busy share since the last call (loop-busy-share.ts); the detector's timeouts stretch while it is saturated. */
      loopBusyShare?: () => number;
    },
  ) {
    const { raft, machine, timings, scheduler, logger } = deps;
    this.replica = new CoordinatorReplica(raft, machine, scheduler);
    const detector = new FailureDetector(
      this.replica,
      {
        leaseTtlMs: timings.leaseTtlMs,
        heartbeatIntervalMs: timings.heartbeatIntervalMs,
        disconnectGraceMs: timings.disconnectGraceMs,
        checkEveryMs: 50,
        onError: (err) => logger.debug({ err }, "liveness proposal failed"),
        // A death moves meetings: worth a warning, with what the detector knew.
        onJudged: (judged) =>
          logger[judged.liveness === "DEAD" ? "warn" : "info"]({ ...judged, node: judged.nodeId, term: raft.term }, `judged ${judged.nodeId} ${judged.liveness} (${judged.verdict})`),
        onMassSilence: (overdue, live) =>
          overdue > 0
            ? logger.warn({ overdue, live }, "most nodes are overdue at once: this leader is likely overloaded or cut off; judging none of them by lease")
            : logger.info({ live }, "nodes are heard again; leases count again"),
        ...(deps.loopBusyShare ? { loopBusyShare: deps.loopBusyShare } : {}),
        onLocalHealth: (multiplier, busyShare) =>
          multiplier > 1
            ? logger.warn({ multiplier, busyShare }, "this leader's event loop is saturated: it may hear heartbeats late, so it judges silence by timeouts stretched by the multiplier")
            : logger.info({ busyShare }, "this leader's event loop has room again: timeouts are back to normal"),
      },
      scheduler,
      deps.detectorBugs,
    );
    this.detector = detector;
    this.watchdog = new MoveWatchdog(
      this.replica,
      {
        checkEveryMs: 100,
        moveTimeoutMs: timings.moveTimeoutMs,
        onError: (err) => logger.debug({ err }, "move deadline proposal failed"),
      },
      scheduler,
    );
    this.loads = new LoadReports(
      this.replica,
      {
        everyMs: timings.loadReportMs,
        onError: (err) => logger.debug({ err }, "load report proposal failed"),
      },
      scheduler,
    );
    // Meetings left waiting for room are placed as soon as room returns: on
    // the leader only, so a follower's timer does not wake it for nothing.
    // Room returns only by an apply, so it looks a moment after one, and
    // every PLACE_EVERY_MS while meetings wait; an idle group with none
    // waiting is not woken.
    let placerLeads = false;
    const placing = new DeadlineTimer(scheduler, () => {
      if (!placerLeads || machine.unassignedMeetings().length === 0) return;
      if (raft.isLeader()) this.replica.propose({ type: "placeUnassigned" }).catch(() => undefined);
      placing.wakeAt(scheduler.now() + PLACE_EVERY_MS);
    });
    this.placer = {
      startLeading: () => {
        placerLeads = true;
        placing.wakeAt(scheduler.now() + PLACE_EVERY_MS);
      },
      stopLeading: () => {
        placerLeads = false;
        placing.cancel();
      },
    };
    // These sleep until their next deadline; a change of state may bring one closer.
    this.unsubscribe = machine.subscribe((notice) => {
      detector.stateChanged(notice);
      this.watchdog.stateChanged();
      if (placerLeads) placing.wakeAt(scheduler.now() + PLACE_EVERY_MS);
    });
    const leading = [detector, this.watchdog, this.loads, this.placer];
    this.onLeader = (change) => leading.forEach((l) => (change.isSelf ? l.startLeading() : l.stopLeading()));
    raft.on("leader", this.onLeader);
    if (raft.isLeader()) leading.forEach((l) => l.startLeading());
    // After the detector's own leader listener: a member that starts to lead resets its detector first.
    this.streams = new StreamReporter(raft, detector, deps.forwardStreamReport, scheduler, timings.heartbeatIntervalMs);
    this.agents = new NodeAgentCore({
      coordinator: this.replica,
      detector,
      loads: this.loads,
      watches: deps.watches,
      timings,
      streams: this.streams.local,
      ...(deps.addressCheck ? { addressCheck: deps.addressCheck } : {}),
      stats: deps.stats,
      logger,
    });
  }

  /** A member (or this one) reports the watch streams it holds to the leader's detector. */
  onStreamReport(report: StreamReport): StreamReportAnswer {
    return this.detector.streamsReported(report);
  }

  stop(): void {
    this.streams.stop();
    this.placer.stopLeading();
    this.deps.raft.off("leader", this.onLeader);
    this.unsubscribe();
    this.detector.stopLeading();
    this.watchdog.stopLeading();
    this.loads.stopLeading();
  }
}
