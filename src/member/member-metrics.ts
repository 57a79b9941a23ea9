/**
 * A member's Prometheus metrics, in a registry of its own (served by
 * metrics-server.ts). Nothing here adds work to the Raft loop beyond what
 * it already does: counts are plain numbers the driver, the gRPC server and
 * the coordinator keep, read when /metrics is scraped; the few histograms
 * (disk writes, applies, peer round trips, snapshots, moves) are observed
 * once per batch or per event; the state gauges (leader, term, indexes,
 * meeting servers, meetings) are read from the member at scrape time.
 *
 * Names follow Prometheus conventions (`_total`, `_seconds`, `_bytes`); the
 * list, with what each means, is in README "Members you can watch", and
 * deploy/ (dashboard, alert rules) names only metrics that exist here
 * (test/member-metrics.test.ts checks it against a running member).
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { registerProcessMetrics } from "../metrics/process-metrics.js";
import type { CoordinatorApp } from "../coordinator/service/coordinator-app.js";
import { NODE_STATUSES } from "../coordinator/model.js";
import type { DriverObserver, RaftDriver } from "../raft-runtime/driver.js";

const SECONDS_FAST = [0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192];
const SECONDS_SLOW = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const BYTES = [1024, 16 * 1024, 256 * 1024, 1024 ** 2, 4 * 1024 ** 2, 16 * 1024 ** 2, 64 * 1024 ** 2, 256 * 1024 ** 2, 1024 ** 3];
/** Moves: from a node's death to the new owner (about a second is the goal). */
const MOVE_SECONDS = [0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60];

/** gRPC status code → name, for the `code` label. */
const STATUS_NAMES = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"];

export class MemberMetrics {
  readonly registry = new Registry();
  /** Handed to the driver: timings of disk writes and applies. */
  readonly driverObserver: DriverObserver;
  /** gRPC calls answered, by method path and status code. */
  private readonly grpcCalls = new Map<string, Map<number, number>>();
  private readonly peerRoundTrip: Histogram<"peer">;
  private readonly peerProbeFailures: Counter<"peer">;

  /** Created before the driver (it takes `driverObserver`); `attach` adds what reads the running member. */
  constructor() {
    const registers = [this.registry];
    const diskWrite = new Histogram({ name: "convene_disk_write_duration_seconds", help: "One synced write of the Raft log (entries, hard state, snapshot reference) to LevelDB", buckets: SECONDS_FAST, registers });
    const apply = new Histogram({ name: "convene_raft_apply_duration_seconds", help: "Applying one batch of committed entries to the state machine", buckets: SECONDS_FAST, registers });
    const applied = new Counter({ name: "convene_raft_applied_entries_total", help: "Committed entries applied to the state machine", registers });
    this.driverObserver = {
      diskWrite: (seconds) => diskWrite.observe(seconds),
      applied: (seconds, entries) => {
        apply.observe(seconds);
        applied.inc(entries);
      },
    };
    this.peerRoundTrip = new Histogram({ name: "convene_peer_round_trip_seconds", help: "Round trip of a health check to each peer member over gRPC", labelNames: ["peer"], buckets: SECONDS_FAST, registers });
    this.peerProbeFailures = new Counter({ name: "convene_peer_probe_failures_total", help: "Health checks of a peer that failed or timed out", labelNames: ["peer"], registers });
    const calls = this.grpcCalls;
    new Counter({
      name: "convene_grpc_requests_total",
      help: "gRPC calls this member answered, by method and status code (calls refused before any handler, by authentication, are not counted)",
      labelNames: ["method", "code"],
      registers,
      collect() {
        this.reset();
        for (const [method, byCode] of calls) for (const [code, n] of byCode) this.inc({ method, code: STATUS_NAMES[code] ?? String(code) }, n);
      },
    });
    registerProcessMetrics(this.registry, "convene_member_");
  }

  /** Adds the metrics read from the running member: its Raft state, and the coordinator's when it runs one. */
  attach(node: RaftDriver, app: CoordinatorApp | undefined, clusterId: string): void {
    const registers = [this.registry];
    const status = (): ReturnType<RaftDriver["status"]> => node.status();
    const gauge = (name: string, help: string, read: () => number): void => {
      new Gauge({ name, help, registers, collect() { this.set(read()); } });
    };
    gauge("convene_raft_has_leader", "1 when this member knows a leader (itself or another), else 0", () => (status().lead !== "" ? 1 : 0));
    gauge("convene_raft_is_leader", "1 when this member is the leader", () => (node.isLeader() ? 1 : 0));
    gauge("convene_raft_term", "The current Raft term", () => node.term);
    gauge("convene_raft_commit_index", "The highest log index this member knows committed", () => status().commit);
    gauge("convene_raft_applied_index", "The highest log index this member has applied", () => status().applied);
    gauge("convene_raft_snapshot_index", "The log index of this member's latest snapshot", () => status().snapshotIndex);
    gauge("convene_raft_proposals_pending", "Proposals waiting to be appended or committed", () => node.pendingProposals);
    gauge("convene_raft_voters", "Voters in the group as this member knows it", () => status().confState.voters.length);
    gauge("convene_raft_learners", "Learners in the group as this member knows it", () => status().confState.learners.length);
    const leaderChanges = new Counter({ name: "convene_raft_leader_changes_total", help: "Times this member saw a new leader", registers });
    node.on("leader", (change) => {
      if (change.leaderId !== "") leaderChanges.inc();
    });
    new Counter({
      name: "convene_raft_proposals_committed_total",
      help: "Proposals made on this member that committed and were applied",
      registers,
      collect() {
        this.reset();
        this.inc(node.stats.proposalsCommitted);
      },
    });
    new Counter({
      name: "convene_raft_proposals_failed_total",
      help: "Proposals made on this member that failed: leadership lost (not_leader), overwritten or replaced by a snapshot (dropped), past their deadline (timeout, outcome unknown), member stopping (stopped)",
      labelNames: ["reason"],
      registers,
      collect() {
        this.reset();
        for (const [reason, n] of Object.entries(node.stats.proposalsFailed)) this.inc({ reason }, n);
      },
    });
    const snapshotSave = new Histogram({ name: "convene_snapshot_save_duration_seconds", help: "Taking a snapshot: encoding the state and writing its file", buckets: SECONDS_SLOW, registers });
    const snapshotSaveSize = new Histogram({ name: "convene_snapshot_save_size_bytes", help: "Size of the snapshots this member took", buckets: BYTES, registers });
    const snapshotRestore = new Histogram({ name: "convene_snapshot_restore_duration_seconds", help: "Restoring the state from a snapshot a leader sent", buckets: SECONDS_SLOW, registers });
    const snapshotRestoreSize = new Histogram({ name: "convene_snapshot_restore_size_bytes", help: "Size of the snapshots restored from a leader", buckets: BYTES, registers });
    node.on("snapshot", (s) => {
      snapshotSave.observe((s.encodeMs + s.writeMs) / 1000);
      snapshotSaveSize.observe(s.bytes);
    });
    node.on("restored", (s) => {
      snapshotRestore.observe(s.restoreMs / 1000);
      snapshotRestoreSize.observe(s.bytes);
    });
    new Gauge({
      name: "convene_member_info",
      help: "Always 1: this member's id and cluster id",
      labelNames: ["member", "cluster_id"],
      registers,
      collect() {
        this.reset();
        this.set({ member: node.id, cluster_id: clusterId }, 1);
      },
    });
    if (app) this.coordinatorMetrics(app, registers);
  }

  /** Counts one answered gRPC call (MemberServer calls it). */
  countCall(method: string, code: number): void {
    let byCode = this.grpcCalls.get(method);
    if (!byCode) this.grpcCalls.set(method, (byCode = new Map()));
    byCode.set(code, (byCode.get(code) ?? 0) + 1);
  }

  /** A peer answered a health check after `seconds`, or (undefined) did not. */
  peerProbed(peer: string, seconds: number | undefined): void {
    if (seconds === undefined) this.peerProbeFailures.inc({ peer });
    else this.peerRoundTrip.observe({ peer }, seconds);
  }

  private coordinatorMetrics(app: CoordinatorApp, registers: Registry[]): void {
    const counts = () => app.machine.queries.counts();
    new Gauge({
      name: "convene_meeting_servers",
      help: "Registered meeting servers by state, as this member has applied them",
      labelNames: ["state"],
      registers,
      collect() {
        const byStatus = counts().nodesByStatus;
        for (const state of NODE_STATUSES) this.set({ state }, byStatus[state]);
      },
    });
    new Gauge({ name: "convene_meetings", help: "Meetings, as this member has applied them", registers, collect() { this.set(counts().meetings); } });
    new Gauge({ name: "convene_meetings_unassigned", help: "Meetings waiting for a live meeting server with room", registers, collect() { this.set(counts().unassigned); } });
    new Gauge({ name: "convene_checkpoints", help: "Meetings with a stored checkpoint", registers, collect() { this.set(counts().checkpoints); } });
    new Gauge({
      name: "convene_detector_timeout_multiplier",
      help: "What the leader's failure detector multiplies its timeouts by while its event loop is saturated (1 = not stretched; 1 on followers)",
      registers,
      collect() {
        this.set(app.detectorTimeoutMultiplier());
      },
    });
    new Gauge({ name: "convene_cluster_version", help: "The cluster version this member has applied (which formats the group writes)", registers, collect() { this.set(app.machine.queries.clusterVersion); } });
    const stats = app.stats;
    new Counter({
      name: "convene_meeting_moves_total",
      help: "Meetings moved to a new owner, by reason (node_dead, drain, deregister, placed_after_wait), as applied on this member",
      labelNames: ["reason"],
      registers,
      collect() {
        this.reset();
        for (const [reason, n] of Object.entries(stats.moves)) this.inc({ reason }, n);
      },
    });
    const moveDuration = new Histogram({
      name: "convene_meeting_move_duration_seconds",
      help: "From a meeting server's death (its last heartbeat, or its connection breaking) to its meeting's new owner assigned; measured by the leader",
      buckets: MOVE_SECONDS,
      registers,
    });
    stats.onMoveTimed = (seconds) => moveDuration.observe(seconds);
    new Counter({ name: "convene_checkpoint_saves_total", help: "Checkpoint saves committed (counted by the leader that proposed them)", registers, collect() { this.reset(); this.inc(stats.checkpointSaves); } });
    new Counter({
      name: "convene_checkpoint_fencing_refusals_total",
      help: "Checkpoint saves refused by fencing: stale generation or epoch, a node declared dead, a lower sequence (counted by the leader)",
      registers,
      collect() {
        this.reset();
        this.inc(stats.fencingRefusals);
      },
    });
  }
}
