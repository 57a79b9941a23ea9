/**
 * gRPC handlers of convene.v1.NodeAgent (API.md), called by meeting servers.
 * Register, SaveCheckpoint and Deregister are Raft writes on the leader;
 * Heartbeat feeds the leader's in-memory failure detector and load
 * reports (not a write; load-reports.ts decides when figures are written);
 * WatchAssignments is served by whichever member the agent reached.
 */
import * as grpc from "@grpc/grpc-js";
import { toGrpcError } from "../../member/grpc-status.js";
import type { LeaderForwarder } from "../../member/leader-forwarder.js";
import { NotLeaderError } from "../../raft/errors.js";
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
import { type NodeLimits, cpuToPermille } from "../node-load.js";
import type { CoordinatorQueries } from "../state.js";
import type { Logger } from "pino";
import type { CoordinatorReplica } from "./coordinator-replica.js";
import type { CoordinatorStats } from "./coordinator-stats.js";
import type { FailureDetector } from "./failure-detector.js";
import type { NodeAddressCheck } from "./node-address-check.js";
import { unaryHandler } from "./handler.js";
import type { LocalStreams } from "./node-streams.js";
import type { LoadReports } from "./load-reports.js";
import { type WatchHub, type WatchStream, endStream, eventMessage } from "./watch-hub.js";

export interface AgentTimings {
  readonly heartbeatIntervalMs: number;
  readonly leaseTtlMs: number;
  readonly maxCheckpointBytes: number;
}

type Req = Record<string, unknown>;

/** Register's limits message → NodeLimits (CPU in thousandths, rounded; a declared CPU limit must be above 0). */
function limitsOf(raw: unknown): NodeLimits {
  if (raw === undefined || raw === null) return { cpuPermille: 0, netInBytesPerSec: 0, netOutBytesPerSec: 0, participants: 0 };
  const r = raw as Req;
  return {
    cpuPermille: cpuToPermille(r.cpu ?? 0, "limits.cpu"),
    netInBytesPerSec: validateUint(r.net_in_bytes_per_sec ?? 0, "limits.net_in_bytes_per_sec"),
    netOutBytesPerSec: validateUint(r.net_out_bytes_per_sec ?? 0, "limits.net_out_bytes_per_sec"),
    participants: validateUint(r.participants ?? 0, "limits.participants"),
  };
}

export function nodeAgentHandlers(deps: {
  coordinator: CoordinatorReplica;
  detector: FailureDetector;
  loads: LoadReports;
  watches: WatchHub;
  forwarder: LeaderForwarder;
  timings: AgentTimings;
  /** This member's open watch streams, reported to the leader's detector. */
  streams: LocalStreams;
  /** The node address policy, checked before Register proposes; none: syntax only. */
  addressCheck?: NodeAddressCheck;
  /** Checkpoint saves and fenced ones, counted where the proposal ran (the leader). */
  stats: CoordinatorStats;
  logger: Pick<Logger, "info" | "debug" | "isLevelEnabled">;
}): grpc.UntypedServiceImplementation {
  const { coordinator, detector, watches, forwarder, timings } = deps;
  const requireLeader = (): void => {
    if (!coordinator.raft.isLeader()) throw new NotLeaderError(coordinator.raft.status().lead, coordinator.raft.leaderAddress());
  };

  return {
    Register: unaryHandler<Req>(forwarder, "Register", async (req) => {
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
      await deps.addressCheck?.check(command.address);
      const r = await coordinator.propose<RegisterResult>(command);
      detector.heard(r.nodeId, r.generation);
      return {
        node_id: r.nodeId,
        generation: r.generation,
        heartbeat_interval_ms: timings.heartbeatIntervalMs,
        lease_ttl_ms: timings.leaseTtlMs,
      };
    }),

    Heartbeat: unaryHandler<Req>(forwarder, "Heartbeat", async (req) => {
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
      requireLeader();
      const check = coordinator.local().checkSession(nodeId, generation);
      if (!check.ok) throw failureToError(check);
      detector.heard(nodeId, generation);
      deps.loads.heard({ nodeId, generation, ...figures });
      return { lease_ttl_ms: timings.leaseTtlMs, draining: check.node.draining };
    }),

    SaveCheckpoint: unaryHandler<Req>(forwarder, "SaveCheckpoint", async (req) => {
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
          deps.stats.fencingRefusals++;
          const { nodeId, generation, meetingId, epoch, sequence } = save;
          deps.logger.info({ meetingId, nodeId, generation, epoch, sequence, term: coordinator.raft.term, reason: err.message }, "checkpoint refused (fencing)");
        }
        throw err;
      }
      deps.stats.checkpointSaves++;
      if (deps.logger.isLevelEnabled("debug")) {
        deps.logger.debug({ meetingId: save.meetingId, nodeId: save.nodeId, epoch: save.epoch, sequence: r.sequence, bytes: state.length, term: coordinator.raft.term }, "checkpoint saved");
      }
      return { sequence: r.sequence };
    }),

    Deregister: unaryHandler<Req>(forwarder, "Deregister", async (req) => {
      const nodeId = validateNodeId(req.node_id);
      const generation = validateGeneration(req.generation);
      await coordinator.propose({ type: "deregister", nodeId, generation });
      deps.logger.info({ nodeId, generation, term: coordinator.raft.term }, "node deregistered");
      return {};
    }),

    WatchAssignments: (call: grpc.ServerWritableStream<Req, unknown>) => {
      let stream: WatchStream | undefined;
      let ended = false;
      const closed = (): void => {
        ended = true;
        if (!stream) return;
        watches.remove(stream);
        deps.streams.closed(stream.nodeId, stream.generation);
        stream = undefined;
      };
      call.on("cancelled", closed);
      call.on("close", closed);
      let nodeId: string;
      let generation: number;
      try {
        nodeId = validateNodeId(call.request.node_id);
        generation = validateGeneration(call.request.generation);
      } catch (err) {
        const e = toGrpcError(err);
        endStream(call, e.code, e.details);
        return;
      }
      const open = (q: CoordinatorQueries) => {
        const check = q.checkSession(nodeId, generation);
        if (!check.ok) throw failureToError(check);
        // The client went away while the session was being checked.
        if (ended) return [];
        // Register for changes and take the list in the same turn, so no
        // change can fall between them. The stream counts as open from here
        // until it closes.
        stream = { nodeId, generation, call: call as grpc.ServerWritableStream<unknown, unknown> };
        watches.add(stream);
        deps.streams.opened(nodeId, generation);
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
      listed
        .then(
          (assignments) => {
            for (const a of assignments) call.write(eventMessage("ASSIGNED", a.meetingId, a.epoch, a.checkpoint));
            // A hand-over the node may not have heard of (its stream broke): ask again.
            for (const a of assignments) if (a.handingOver) call.write(eventMessage("HANDOVER", a.meetingId, a.epoch));
          },
          (err: unknown) => {
            const e = toGrpcError(err);
            endStream(call, e.code, e.details);
          },
        );
    },
  };
}
