/**
 * The shapes of the replicated coordinator state and of what it hands out.
 *
 * Records (`NodeRecord`, `MeetingRecord`, `CheckpointRecord`) are the state
 * itself and are mutated only by `CoordinatorState`'s primitives during
 * apply. Views (`NodeView`, `Route`, `CheckpointView`, ...) are what
 * queries return; they share byte arrays with the state instead of copying
 * up to 256 KiB per read, so callers must not mutate them.
 */
import type { Labels } from "./labels.js";
import type { NodeLimits, NodeLoad } from "./node-load.js";
import type { RecentPlacements } from "./recent-placements.js";

/** What the failure detector decides: changed only by `setLiveness`. */
export type Liveness = "ALIVE" | "SUSPECT" | "DEAD";

/**
 * The API's node `state` enum (ALIVE=1, SUSPECT=2, DEAD=3, DRAINING=4).
 * Liveness and draining are kept apart in the record (a draining node can
 * die); the reported state is the most urgent one: DEAD, then SUSPECT,
 * then DRAINING, then ALIVE.
 */
export type NodeStatus = Liveness | "DRAINING";

export const NODE_STATUSES: readonly NodeStatus[] = ["ALIVE", "SUSPECT", "DEAD", "DRAINING"];

export interface NodeRecord {
  readonly id: string;
  address: string;
  capacity: number;
  region: string;
  labels: Labels;
  /** Grows on every Register of this id, across Deregister too. */
  generation: number;
  /** The token of the process registered as this generation ("" when it sent none): see applyRegister. */
  incarnation: string;
  liveness: Liveness;
  /** Set by DrainNode and Deregister; cleared by Register (a fresh start). */
  draining: boolean;
  /** Flap damping: latest deaths within the window (see flap-damping.ts). */
  deathsMs: readonly number[];
  heldOutUntilMs: number;
  /** Burst compensation (see recent-placements.ts). */
  recent: RecentPlacements;
  /** Derived, rebuilt on restore: meetings whose owner is this node. */
  assigned: number;
  /** Declared at Register: hard limits placement never passes (node-load.ts). */
  limits: NodeLimits;
  /** The last figures the leader wrote for it (reportLoad); zero until then. */
  load: NodeLoad;
  /**
   * A planned drain's deadline on the replicated clock (0: none). Set by
   * scheduleDrain; when the clock passes it the leader hands the node's
   * remaining meetings over (drainDue). Cleared by Register and undrain.
   */
  drainDeadlineMs: number;
}

export interface MeetingRecord {
  readonly id: string;
  /** The hosting node, or "" while no live node has room for it. Changed only by CoordinatorState (see its meeting watchers). */
  readonly owner: string;
  /** 1 at creation; +1 each time it is assigned to a new owner. */
  readonly epoch: number;
  /** The log index of the command that created it. */
  readonly createdIndex: number;
  readonly createdAtMs: number;
  /** Placement hint and constraints, kept for every later move. */
  readonly region: string;
  readonly requiredLabels: Labels;
  /** No node with any of these key/values hosts it. */
  readonly excludedLabels: Labels;
  /** A planned move under way (move-commands.ts), or undefined. Cleared whenever the owner changes. */
  readonly move: PendingMove | undefined;
}

/**
 * Why a meeting changed hosts, as events report it. API.md's reasons
 * (NODE_DEAD, DRAIN with migrate, NODE_LEFT by Deregister) and the
 * operator-requested ones (PLANNED_MOVE, REBALANCE, and DRAIN for a drain
 * with a deadline, whose moves are hand-overs); PLACED for a meeting that
 * waited unassigned and found room; NODE_REREGISTERED for a meeting kept by
 * a node that registered again (same node, a new tenure at a new epoch).
 */
export type { MoveReason } from "../wire/event-types.js";

/** The reasons a hand-over is started for. */
export type HandOverReason = "PLANNED_MOVE" | "REBALANCE" | "DRAIN";

/**
 * A hand-over under way: the owner was told (HANDOVER on its watch
 * stream) to take a final checkpoint and stop writing; completeMove
 * assigns the meeting on with it, expireMove moves it at `deadlineMs`
 * with the last checkpoint instead.
 */
export interface PendingMove {
  /** The requested new owner; "" lets placement choose at completion. */
  readonly toNodeId: string;
  readonly reason: HandOverReason;
  readonly startedAtMs: number;
  /** On the replicated clock. */
  readonly deadlineMs: number;
}

export interface CheckpointRecord {
  readonly meetingId: string;
  /** The node that saved it, and the epoch it held then. */
  readonly nodeId: string;
  readonly epoch: number;
  readonly sequence: number;
  readonly state: Uint8Array;
  readonly savedAtMs: number;
}

/** A checkpoint as the API's `Checkpoint` message. */
export type CheckpointView = Readonly<CheckpointRecord>;

export interface NodeView {
  readonly nodeId: string;
  readonly address: string;
  readonly capacity: number;
  readonly region: string;
  readonly labels: Labels;
  readonly state: NodeStatus;
  readonly liveness: Liveness;
  readonly draining: boolean;
  /** Meetings assigned to it now. */
  readonly meetings: number;
  readonly generation: number;
  /** Held out of placement by flap damping until then (0: not held). */
  readonly heldOutUntilMs: number;
  readonly limits: NodeLimits;
  readonly load: NodeLoad;
  /** A planned drain's deadline (0: none). */
  readonly drainDeadlineMs: number;
}

/** The API's `Route`. `nodeId` and `address` are "" for an unassigned meeting. */
export interface Route {
  readonly meetingId: string;
  readonly nodeId: string;
  readonly address: string;
  readonly epoch: number;
}

/** One meeting a node must host, as the first events of its watch stream. */
export interface Assignment {
  readonly meetingId: string;
  readonly epoch: number;
  readonly checkpoint?: CheckpointView;
  /** A hand-over of it is under way: the stream follows the ASSIGNED with a HANDOVER. */
  readonly handingOver?: boolean;
}

/** HANDOVER: the owner must take a final checkpoint, stop writing, and call HandOver. */
export type AssignmentEventType = "ASSIGNED" | "REVOKED" | "HANDOVER";

/**
 * A change of who hosts what, produced by apply for the watch streams:
 * the service sends it to `nodeId`'s stream (if that node watches with
 * `generation`), and gateways may use ASSIGNED to refresh route caches.
 * A move is REVOKED (old owner, old epoch) then ASSIGNED (new owner, new
 * epoch, last checkpoint). HANDOVER (owner, current epoch) starts a
 * planned move and changes no route.
 */
export interface AssignmentEvent {
  readonly type: AssignmentEventType;
  readonly nodeId: string;
  /** The node's generation when the event was produced. */
  readonly generation: number;
  readonly meetingId: string;
  readonly epoch: number;
  /** ASSIGNED only, and only when one exists. */
  readonly checkpoint?: CheckpointView;
}

/** One applied command, for operators (`convene log`). */
export interface AuditEntry {
  readonly index: number;
  readonly kind: string;
  readonly nowMs: number;
  readonly ok: boolean;
  /** The error code of a refused command, "" when it succeeded. */
  readonly code: string;
  readonly summary: string;
  /** The term of the leader that proposed it (from command version 2 on; 0 before). */
  readonly term: number;
}
