/**
 * The commands of planned moves and planned drains, with their parsing
 * (commands.ts hands them here): every meeting move an operator or the
 * node itself asks for, as opposed to the failover moves API.md has
 * always made. Applied by apply-moves.ts.
 *
 *   startMove      MoveMeeting: tell the owner to hand the meeting over.
 *   completeMove   the owner's HandOver: its final checkpoint, stored and
 *                  carried to the new owner in the same command.
 *   expireMove     the leader, when a hand-over's deadline passed: an
 *                  ordinary failover move, with the last checkpoint.
 *   rebalance      hand-overs off nodes above a utilization threshold.
 *   scheduleDrain  a drain with a deadline (DrainNode deadline_ms, the
 *                  agent's Drain): no new meetings; at the deadline ...
 *   drainDue       ... the leader hands the remaining meetings over.
 *   undrain        the node takes new meetings again.
 *
 * Durations (timeoutMs, afterMs) are carried in the command and added to
 * the replicated clock in apply, so every member computes the same deadline.
 */
import { InvalidArgumentError } from "./errors.js";
import {
  shown,
  validateBytes,
  validateEpoch,
  validateGeneration,
  validateMeetingId,
  validateNodeId,
  validateSequence,
  validateUint,
} from "./ids.js";

/** Longest hand-over deadline and drain deadline accepted: a day. */
export const MAX_DURATION_MS = 24 * 3600_000;

export interface StartMoveCommand {
  readonly type: "startMove";
  readonly nowMs: number;
  readonly meetingId: string;
  /** "" lets placement choose at completion. */
  readonly toNodeId: string;
  /** How long the owner has to hand over before the move is forced. */
  readonly timeoutMs: number;
}

export interface CompleteMoveCommand {
  readonly type: "completeMove";
  readonly nowMs: number;
  readonly nodeId: string;
  readonly generation: number;
  readonly meetingId: string;
  readonly epoch: number;
  readonly sequence: number;
  readonly state: Uint8Array;
}

export interface ExpireMoveCommand {
  readonly type: "expireMove";
  readonly nowMs: number;
  readonly meetingId: string;
  /** The epoch the leader saw the move pending at: a later epoch makes the command stale. */
  readonly epoch: number;
}

export interface RebalanceCommand {
  readonly type: "rebalance";
  readonly nowMs: number;
  /** Hand-overs this command may start. */
  readonly maxMoves: number;
  /** Rebalancing hand-overs that may be under way at once, these included. */
  readonly maxInFlight: number;
  /** Nodes whose utilization is above this (thousandths) are relieved. */
  readonly thresholdPermille: number;
  readonly timeoutMs: number;
}

export interface ScheduleDrainCommand {
  readonly type: "scheduleDrain";
  readonly nowMs: number;
  readonly nodeId: string;
  /** 0: any generation (an operator's drain); else the agent's own, fenced like its other calls. */
  readonly generation: number;
  /** Meetings still on the node this long from now are handed over. */
  readonly afterMs: number;
}

export interface DrainDueCommand {
  readonly type: "drainDue";
  readonly nowMs: number;
  readonly nodeId: string;
  readonly timeoutMs: number;
}

export interface UndrainCommand {
  readonly type: "undrain";
  readonly nowMs: number;
  readonly nodeId: string;
}

export type MoveCommand =
  | StartMoveCommand
  | CompleteMoveCommand
  | ExpireMoveCommand
  | RebalanceCommand
  | ScheduleDrainCommand
  | DrainDueCommand
  | UndrainCommand;

export type MoveCommandType = MoveCommand["type"];

export const MOVE_COMMAND_TYPES: readonly MoveCommandType[] = ["startMove", "completeMove", "expireMove", "rebalance", "scheduleDrain", "drainDue", "undrain"];

export function isMoveCommandType(type: unknown): type is MoveCommandType {
  return MOVE_COMMAND_TYPES.includes(type as MoveCommandType);
}

/** A duration in 1..MAX_DURATION_MS (0 too when `allowZero`), named by its API field. */
export function validateDuration(value: unknown, field: string, allowZero = false): number {
  const n = validateUint(value, field);
  if ((n === 0 && !allowZero) || n > MAX_DURATION_MS) {
    throw new InvalidArgumentError(`${field} must be from ${allowZero ? 0 : 1} to ${MAX_DURATION_MS} ms (a day), got ${shown(value)}`);
  }
  return n;
}

export function validateNodeIdOrEmpty(value: unknown, field: string): string {
  return value === "" || value === undefined ? "" : validateNodeId(value, field);
}

/** The command a decoded map of one of these types stands for, every field validated. */
export function parseMoveCommand(type: MoveCommandType, c: Record<string, unknown>, nowMs: number): MoveCommand {
  switch (type) {
    case "startMove":
      return {
        type,
        nowMs,
        meetingId: validateMeetingId(c["meetingId"]),
        toNodeId: validateNodeIdOrEmpty(c["toNodeId"], "to_node_id"),
        timeoutMs: validateDuration(c["timeoutMs"], "timeout_ms"),
      };
    case "completeMove":
      return {
        type,
        nowMs,
        nodeId: validateNodeId(c["nodeId"]),
        generation: validateGeneration(c["generation"]),
        meetingId: validateMeetingId(c["meetingId"]),
        epoch: validateEpoch(c["epoch"]),
        sequence: validateSequence(c["sequence"]),
        state: validateBytes(c["state"], "state"),
      };
    case "expireMove":
      return { type, nowMs, meetingId: validateMeetingId(c["meetingId"]), epoch: validateEpoch(c["epoch"]) };
    case "rebalance": {
      const thresholdPermille = validateUint(c["thresholdPermille"], "threshold");
      if (thresholdPermille > 1000) throw new InvalidArgumentError(`threshold must be in 0..1, got ${thresholdPermille / 1000}`);
      return {
        type,
        nowMs,
        maxMoves: validateCount(c["maxMoves"], "max_moves"),
        maxInFlight: validateCount(c["maxInFlight"], "max_in_flight"),
        thresholdPermille,
        timeoutMs: validateDuration(c["timeoutMs"], "timeout_ms"),
      };
    }
    case "scheduleDrain":
      return {
        type,
        nowMs,
        nodeId: validateNodeId(c["nodeId"]),
        generation: validateUint(c["generation"] ?? 0, "generation"),
        afterMs: validateDuration(c["afterMs"], "deadline_ms", true),
      };
    case "drainDue":
      return { type, nowMs, nodeId: validateNodeId(c["nodeId"]), timeoutMs: validateDuration(c["timeoutMs"], "timeout_ms") };
    case "undrain":
      return { type, nowMs, nodeId: validateNodeId(c["nodeId"]) };
    default:
      throw new InvalidArgumentError(`command type must be a move command, got ${shown(type satisfies never)}`);
  }
}

function validateCount(value: unknown, field: string): number {
  const n = validateUint(value, field);
  if (n < 1 || n > 1000) throw new InvalidArgumentError(`${field} must be from 1 to 1000, got ${shown(value)}`);
  return n;
}

/** Results of the move commands. */
export interface StartMoveResult {
  readonly ok: true;
  readonly type: "startMove";
  readonly meetingId: string;
  readonly fromNodeId: string;
  /** The requested node, or "" for placement's choice at completion. */
  readonly toNodeId: string;
  readonly epoch: number;
  readonly deadlineMs: number;
  /** False when the same move was already under way (a repeated request). */
  readonly started: boolean;
}

export interface CompleteMoveResult {
  readonly ok: true;
  readonly type: "completeMove";
  readonly sequence: number;
  readonly toNodeId: string;
  readonly epoch: number;
}

export interface ExpireMoveResult {
  readonly ok: true;
  readonly type: "expireMove";
  /** False when the move had completed (or the meeting moved or ended) meanwhile. */
  readonly expired: boolean;
  readonly toNodeId: string;
}

export interface PlannedMove {
  readonly meetingId: string;
  readonly fromNodeId: string;
  readonly toNodeId: string;
}

export interface RebalanceResult {
  readonly ok: true;
  readonly type: "rebalance";
  readonly moves: readonly PlannedMove[];
  /** Rebalancing hand-overs under way after this command. */
  readonly inFlight: number;
}

export interface ScheduleDrainResult {
  readonly ok: true;
  readonly type: "scheduleDrain";
  readonly deadlineMs: number;
}

export interface DrainDueResult {
  readonly ok: true;
  readonly type: "drainDue";
  readonly started: number;
  /** Meetings left on the node because no other node has room for them now. */
  readonly stayed: number;
}

export interface UndrainResult {
  readonly ok: true;
  readonly type: "undrain";
  readonly wasDraining: boolean;
}

export type MoveResult = StartMoveResult | CompleteMoveResult | ExpireMoveResult | RebalanceResult | ScheduleDrainResult | DrainDueResult | UndrainResult;
