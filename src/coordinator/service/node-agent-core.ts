/**
 * What a member does for each NodeAgent call (API.md), apart from how the
 * call arrived: the gRPC handlers (node-agent-service.ts) are thin adapters
 * over it, and the whole-product simulation calls it directly, so both run
 * the same code. Register, SaveCheckpoint and Deregister are Raft writes
 * on the leader (NotLeaderError on a follower: the caller forwards), and
 * so are HandOver (a planned move's final checkpoint) and Drain (a planned
 * stop); Heartbeat feeds the leader's in-memory failure detector and load
 * reports (not a write; load-reports.ts decides when figures are written);
 * a watch is served by whichever member the agent reached.
 *
 * Requests are the wire's objects (snake_case fields), validated here.
 */
import type { Logger } from "pino";
import { toGrpcError } from "../../member/grpc-status.js";
import type { RegisterResult, SaveCheckpointResult } from "../command-results.js";
import { FailedPreconditionError, ResourceExhaustedError, failureToError } from "../errors.js";
import {
  validateAddress,
  validateBytes,
  validateCapacity,
  validateEpoch,
  validateGeneration,
  validateIncarnation,
  validateLoad,
  validateMeetingId,
  validateNodeId,
  validateRegion,
  validateSequence,
  validateUint,
} from "../ids.js";
import { validateLabels } from "../labels.js";
import { type CompleteMoveResult, type ScheduleDrainResult, validateDuration } from "../move-commands.js";
import { type NodeLimits, cpuToPermille } from "../node-load.js";
import type { CoordinatorQueries } from "../state.js";
import type { CoordinatorReplica } from "./coordinator-replica.js";
import type { CoordinatorStats } from "./coordinator-stats.js";
import type { FailureDetector } from "./failure-detector.js";
import type { LoadReports } from "./load-reports.js";
import type { NodeAddressCheck } from "./node-address-check.js";
import type { LocalStreams } from "./node-streams.js";
import { type WatchHub, type WatchSink, type WatchStream, eventMessage } from "./watch-hub.js";

export interface AgentTimings {
  readonly heartbeatIntervalMs: number;
  readonly leaseTtlMs: number;
  readonly maxCheckpointBytes: number;
}

export type AgentRequest = Record<string, unknown>;

/** Register's limits message → NodeLimits (CPU in thousandths, rounded; a declared CPU limit must be above 0). */
function limitsOf(raw: unknown): NodeLimits {
  if (raw === undefined || raw === null) return { cpuPermille: 0, netInBytesPerSec: 0, netOutBytesPerSec: 0, participants: 0 };
  const r = raw as AgentRequest;
  return {
    cpuPermille: cpuToPermille(r.cpu ?? 0, "limits.cpu"),
    netInBytesPerSec: validateUint(r.net_in_bytes_per_sec ?? 0, "limits.net_in_bytes_per_sec"),
    netOutBytesPerSec: validateUint(r.net_out_bytes_per_sec ?? 0, "limits.net_out_bytes_per_sec"),
    participants: validateUint(r.participants ?? 0, "limits.participants"),
  };
}

export interface NodeAgentCoreDeps {
  coordinator: CoordinatorReplica;
  detector: FailureDetector;
  loads: LoadReports;
  watches: WatchHub;
  timings: AgentTimings;
  /** This member's open watch streams, reported to the leader's detector. */
  streams: LocalStreams;
  /** The node address policy, checked before Register proposes; none: syntax only. */
  addressCheck?: NodeAddressCheck;
  /** Checkpoint saves and fenced ones, counted where the proposal ran (the leader). */
  stats: CoordinatorStats;
  logger: Pick<Logger, "info" | "debug" | "isLevelEnabled">;
}

export class NodeAgentCore {
  constructor(private readonly deps: NodeAgentCoreDeps) {}

  private requireLeader(): void {
    const raft = this.deps.coordinator.raft;
    if (!raft.isLeader()) throw raft.notLeader();
  }

  async register(req: AgentRequest): Promise<Record<string, unknown>> {
    const { coordinator, detector, timings } = this.deps;
    const command = {
      type: "register" as const,
      nodeId: validateNodeId(req.node_id),
      address: validateAddress(req.address),
      capacity: validateCapacity(req.capacity),
      region: validateRegion(req.region ?? ""),
      labels: validateLabels(req.labels ?? {}),
      ...(req.incarnation ? { incarnation: validateIncarnation(req.incarnation) } : {}),
      limits: limitsOf(req.limits),
    };
    // This member's policy, here and not in apply: apply must decide alike on every member.
    await this.deps.addressCheck?.check(command.address);
    const r = await coordinator.propose<RegisterResult>(command);
    detector.heard(r.nodeId, r.generation);
    return {
      node_id: r.nodeId,
      generation: r.generation,
      heartbeat_interval_ms: timings.heartbeatIntervalMs,
      lease_ttl_ms: timings.leaseTtlMs,
    };
  }

  async heartbeat(req: AgentRequest): Promise<Record<string, unknown>> {
    const nodeId = validateNodeId(req.node_id);
    const generation = validateGeneration(req.generation);
    validateUint(req.active_meetings ?? 0, "active_meetings");
    validateLoad(req.load ?? 0);
    const figures = {
      cpuPermille: cpuToPermille(req.cpu ?? 0, "cpu"),
      netInBytesPerSec: validateUint(req.net_in_bytes_per_sec ?? 0, "net_in_bytes_per_sec"),
      netOutBytesPerSec: validateUint(req.net_out_bytes_per_sec ?? 0, "net_out_bytes_per_sec"),
      participants: validateUint(req.participants ?? 0, "participants"),
    };
    this.requireLeader();
    const check = this.deps.coordinator.local().checkSession(nodeId, generation);
    if (!check.ok) throw failureToError(check);
    this.deps.detector.heard(nodeId, generation);
    this.deps.loads.heard({ nodeId, generation, ...figures });
    return { lease_ttl_ms: this.deps.timings.leaseTtlMs, draining: check.node.draining };
  }

  async saveCheckpoint(req: AgentRequest): Promise<Record<string, unknown>> {
    const { coordinator, timings, stats, logger } = this.deps;
    const state = validateBytes(req.state ?? new Uint8Array(0), "state");
    if (state.length > timings.maxCheckpointBytes) {
      throw new ResourceExhaustedError(`state is ${state.length} bytes, over the limit of ${timings.maxCheckpointBytes}`);
    }
    const save = {
      type: "saveCheckpoint" as const,
      nodeId: validateNodeId(req.node_id),
      generation: validateGeneration(req.generation),
      meetingId: validateMeetingId(req.meeting_id),
      epoch: validateEpoch(req.epoch),
      sequence: validateSequence(req.sequence),
      state,
    };
    let r: SaveCheckpointResult;
    try {
      r = await coordinator.propose<SaveCheckpointResult>(save);
    } catch (err) {
      if (err instanceof FailedPreconditionError) {
        stats.fencingRefusals++;
        const { nodeId, generation, meetingId, epoch, sequence } = save;
        logger.info({ meetingId, nodeId, generation, epoch, sequence, term: coordinator.raft.term, reason: err.message }, "checkpoint refused (fencing)");
      }
      throw err;
    }
    stats.checkpointSaves++;
    if (logger.isLevelEnabled("debug")) {
      logger.debug({ meetingId: save.meetingId, nodeId: save.nodeId, epoch: save.epoch, sequence: r.sequence, bytes: state.length, term: coordinator.raft.term }, "checkpoint saved");
    }
    return { sequence: r.sequence };
  }

  async deregister(req: AgentRequest): Promise<Record<string, unknown>> {
    const nodeId = validateNodeId(req.node_id);
    const generation = validateGeneration(req.generation);
    await this.deps.coordinator.propose({ type: "deregister", nodeId, generation });
    this.deps.logger.info({ nodeId, generation, term: this.deps.coordinator.raft.term }, "node deregistered");
    return {};
  }

  /** The owner's answer to HANDOVER: its final checkpoint, stored, and the meeting moved. */
  async handOver(req: AgentRequest): Promise<Record<string, unknown>> {
    const { coordinator, timings } = this.deps;
    const state = validateBytes(req.state ?? new Uint8Array(0), "state");
    if (state.length > timings.maxCheckpointBytes) {
      throw new ResourceExhaustedError(`state is ${state.length} bytes, over the limit of ${timings.maxCheckpointBytes}`);
    }
    const r = await coordinator.propose<CompleteMoveResult>({
      type: "completeMove",
      nodeId: validateNodeId(req.node_id),
      generation: validateGeneration(req.generation),
      meetingId: validateMeetingId(req.meeting_id),
      epoch: validateEpoch(req.epoch),
      sequence: validateSequence(req.sequence),
      state,
    });
    return { sequence: r.sequence, to_node_id: r.toNodeId, epoch: r.epoch };
  }

  /** A planned stop: the node drains itself, its meetings handed over within the deadline. */
  async drain(req: AgentRequest): Promise<Record<string, unknown>> {
    const r = await this.deps.coordinator.propose<ScheduleDrainResult>({
      type: "scheduleDrain",
      nodeId: validateNodeId(req.node_id),
      generation: validateGeneration(req.generation),
      afterMs: validateDuration(req.deadline_ms ?? 0, "deadline_ms", true),
    });
    return { deadline_at_ms: r.deadlineMs };
  }

  /**
   * Opens a WatchAssignments stream on this member: ASSIGNED for every
   * meeting the node generation holds, then each change as this member
   * applies it. Refusals end `sink` with their status. Returns what to call
   * when the client goes away (idempotent).
   */
  watch(req: AgentRequest, sink: WatchSink): () => void {
    const { coordinator, watches, streams } = this.deps;
    let stream: WatchStream | undefined;
    let ended = false;
    const closed = (): void => {
      ended = true;
      if (!stream) return;
      watches.remove(stream);
      streams.closed(stream.nodeId, stream.generation);
      stream = undefined;
    };
    let nodeId: string;
    let generation: number;
    try {
      nodeId = validateNodeId(req.node_id);
      generation = validateGeneration(req.generation);
    } catch (err) {
      const e = toGrpcError(err);
      sink.end(e.code, e.details);
      return closed;
    }
    const open = (q: CoordinatorQueries) => {
      const check = q.checkSession(nodeId, generation);
      if (!check.ok) throw failureToError(check);
      // The client went away while the session was being checked.
      if (ended) return [];
      // Register for changes and take the list in the same turn, so no
      // change can fall between them. The stream counts as open from here
      // until it closes.
      stream = { nodeId, generation, sink };
      watches.add(stream);
      streams.opened(nodeId, generation);
      return q.meetingsOf(nodeId);
    };
    // The list as this member has applied it, then every change in apply
    // order: a consistent (possibly slightly older) view that needs no
    // leader, so an agent moving off a dead leader is re-announced its
    // meetings at once, not after the election. Only when this member
    // does not know the session yet (a registration it has not applied)
    // is the check made at a linearizable point.
    const local = coordinator.local().checkSession(nodeId, generation);
    const listed = local.ok ? Promise.resolve(open(coordinator.local())) : coordinator.read(open);
    listed.then(
      (assignments) => {
        for (const a of assignments) sink.write(eventMessage("ASSIGNED", a.meetingId, a.epoch, a.checkpoint));
        // A hand-over the node may not have heard of (its stream broke): ask again.
        for (const a of assignments) if (a.handingOver) sink.write(eventMessage("HANDOVER", a.meetingId, a.epoch));
      },
      (err: unknown) => {
        const e = toGrpcError(err);
        sink.end(e.code, e.details);
      },
    );
    return closed;
  }
}
