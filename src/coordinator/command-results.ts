/**
 * What applying a command returns: a result (success or a failure as
 * data, never an exception, so every member's apply returns the same) and
 * the assignment events it produced. On the leader the RaftDriver hands the
 * outcome to the proposer; on every member the state machine also hands it
 * to its subscribers (the watch streams).
 */
import type { CommandType } from "./commands.js";
import type { CommandFailure } from "./errors.js";
import type { ReportLoadResult } from "./load-commands.js";
import type { MoveResult } from "./move-commands.js";
import type { AssignmentEvent, Liveness, Route } from "./model.js";

export interface RegisterResult {
  readonly ok: true;
  readonly type: "register";
  readonly nodeId: string;
  readonly generation: number;
}

export interface SetLivenessResult {
  readonly ok: true;
  readonly type: "setLiveness";
  readonly nodeId: string;
  readonly liveness: Liveness;
  /** False when the node already had this liveness (a repeated proposal). */
  readonly changed: boolean;
  /** DEAD only: meetings moved to other nodes, and left waiting for room. */
  readonly moved: number;
  readonly unassigned: number;
  /** Flap damping's verdict (0: not held out). */
  readonly heldOutUntilMs: number;
}

export interface CreateMeetingResult {
  readonly ok: true;
  readonly type: "createMeeting";
  readonly route: Route;
  /** True when this command created and assigned it. */
  readonly created: boolean;
}

export interface EndMeetingResult {
  readonly ok: true;
  readonly type: "endMeeting";
  readonly meetingId: string;
}

export interface SaveCheckpointResult {
  readonly ok: true;
  readonly type: "saveCheckpoint";
  /** The stored sequence (the API's response). */
  readonly sequence: number;
  /** False for an idempotent repeat of the stored sequence. */
  readonly stored: boolean;
}

export interface DrainNodeResult {
  readonly ok: true;
  readonly type: "drainNode";
  readonly moved: number;
  /** Meetings still on the node: all of them without migrate, those no node had room for with it. */
  readonly stayed: number;
}

export interface DeregisterResult {
  readonly ok: true;
  readonly type: "deregister";
  readonly moved: number;
  readonly unassigned: number;
}

export interface PlaceUnassignedResult {
  readonly ok: true;
  readonly type: "placeUnassigned";
  readonly placed: number;
  readonly stillUnassigned: number;
}

export interface SetClusterVersionResult {
  readonly ok: true;
  readonly type: "setClusterVersion";
  /** The cluster version now (never lower than before). */
  readonly version: number;
  readonly changed: boolean;
}

export type CommandSuccess =
  | SetClusterVersionResult
  | RegisterResult
  | SetLivenessResult
  | CreateMeetingResult
  | EndMeetingResult
  | SaveCheckpointResult
  | DrainNodeResult
  | DeregisterResult
  | PlaceUnassignedResult
  | ReportLoadResult
  | MoveResult;

export type CommandResult = CommandSuccess | CommandFailure;

/** The result type of one command type, for typed proposers. */
export type ResultOf<T extends CommandType> = Extract<CommandSuccess, { type: T }> | CommandFailure;

export interface ApplyOutcome {
  readonly index: number;
  readonly result: CommandResult;
  /**
   * Every assignment change, in order, including meetings that waited
   * unassigned and were placed after this command freed room.
   */
  readonly events: readonly AssignmentEvent[];
}
