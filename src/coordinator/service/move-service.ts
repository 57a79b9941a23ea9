/**
 * gRPC handlers of planned moves and planned drains (proto/convene.proto):
 * Coordinator.MoveMeeting, Rebalance and UndrainNode for operators (the
 * meeting servers' NodeAgent.HandOver and Drain are NodeAgentCore's,
 * node-agent-core.ts). Each validates, then proposes one command
 * (../move-commands.ts) on the leader (a follower forwards); a Rebalance
 * dry run is a linearizable read instead.
 */
import type * as grpc from "@grpc/grpc-js";
import type { LeaderForwarder } from "../../member/leader-forwarder.js";
import type { RebalanceResult, StartMoveResult } from "../move-commands.js";
import { requireClusterVersion } from "../command-gates.js";
import { InvalidArgumentError } from "../errors.js";
import { MOVES_AND_LOAD_VERSION } from "../formats.js";
import { shown, validateMeetingId, validateNodeId, validateUint } from "../ids.js";
import { type PlannedMove, validateDuration, validateNodeIdOrEmpty } from "../move-commands.js";
import type { CoordinatorReplica } from "./coordinator-replica.js";
import { unaryHandler } from "./handler.js";

type Req = Record<string, unknown>;

export interface MoveDefaults {
  /** How long an owner has to hand a meeting over when the request does not say. */
  readonly moveTimeoutMs: number;
}

export const REBALANCE_DEFAULTS = { maxMoves: 1, maxInFlight: 2, threshold: 0.8 } as const;

function timeoutOf(value: unknown, defaults: MoveDefaults): number {
  const n = validateUint(value ?? 0, "timeout_ms");
  return n === 0 ? defaults.moveTimeoutMs : validateDuration(n, "timeout_ms");
}

function countOr(value: unknown, field: string, fallback: number): number {
  const n = validateUint(value ?? 0, field);
  if (n > 1000) throw new InvalidArgumentError(`${field} must be from 0 to 1000, got ${n}`);
  return n === 0 ? fallback : n;
}

function thresholdOf(value: unknown): number {
  const t = value ?? 0;
  if (typeof t !== "number" || !Number.isFinite(t) || t < 0 || t > 1) throw new InvalidArgumentError(`threshold must be a number in 0..1, got ${shown(t)}`);
  return Math.round((t === 0 ? REBALANCE_DEFAULTS.threshold : t) * 1000);
}

function plannedMessage(m: PlannedMove): Record<string, unknown> {
  return { meeting_id: m.meetingId, from_node_id: m.fromNodeId, to_node_id: m.toNodeId };
}

export function moveCoordinatorHandlers(deps: { coordinator: CoordinatorReplica; forwarder: LeaderForwarder; defaults: MoveDefaults }): grpc.UntypedServiceImplementation {
  const { coordinator, forwarder, defaults } = deps;
  return {
    MoveMeeting: unaryHandler<Req>(forwarder, "MoveMeeting", async (req) => {
      const r = await coordinator.propose<StartMoveResult>({
        type: "startMove",
        meetingId: validateMeetingId(req.meeting_id),
        toNodeId: validateNodeIdOrEmpty(req.to_node_id ?? "", "to_node_id"),
        timeoutMs: timeoutOf(req.timeout_ms, defaults),
      });
      return { meeting_id: r.meetingId, from_node_id: r.fromNodeId, to_node_id: r.toNodeId, epoch: r.epoch, deadline_ms: r.deadlineMs, started: r.started };
    }),

    Rebalance: unaryHandler<Req>(forwarder, "Rebalance", async (req) => {
      // A dry run writes nothing, but plans moves no member could make below that version.
      requireClusterVersion(coordinator.local().clusterVersion, MOVES_AND_LOAD_VERSION, "Rebalance");
      const options = {
        maxMoves: countOr(req.max_moves, "max_moves", REBALANCE_DEFAULTS.maxMoves),
        maxInFlight: countOr(req.max_in_flight, "max_in_flight", REBALANCE_DEFAULTS.maxInFlight),
        thresholdPermille: thresholdOf(req.threshold),
      };
      const timeoutMs = timeoutOf(req.timeout_ms, defaults);
      if (req.dry_run === true) {
        const [moves, inFlight] = await coordinator.read((q) => [q.planRebalance(options), q.pendingMoves().filter((m) => m.reason === "REBALANCE").length] as const);
        return { moves: moves.map(plannedMessage), in_flight: inFlight };
      }
      const r = await coordinator.propose<RebalanceResult>({ type: "rebalance", ...options, timeoutMs });
      return { moves: r.moves.map(plannedMessage), in_flight: r.inFlight };
    }),

    UndrainNode: unaryHandler<Req>(forwarder, "UndrainNode", async (req) => {
      await coordinator.propose({ type: "undrain", nodeId: validateNodeId(req.node_id) });
      return {};
    }),
  };
}
