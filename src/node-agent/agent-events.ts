/**
 * What a NodeAgent tells its host besides the callbacks: the events it
 * emits (typed for `agent.on(...)`) and the options of `stop`.
 * 'error' is emitted only while someone listens; every error is logged.
 */
import type { Checkpoint } from "./coordinator-responses.js";

export interface RegisteredInfo {
  readonly generation: number;
  readonly heartbeatIntervalMs: number;
  readonly leaseTtlMs: number;
}
export interface ReregisteredInfo extends RegisteredInfo {
  readonly previousGeneration: number;
  readonly reason: string;
}
export interface AssignedInfo {
  readonly meetingId: string;
  readonly epoch: number;
  readonly checkpoint: Checkpoint | undefined;
  /** True when it was held at a lower epoch (an onRevoked came first). */
  readonly reassigned: boolean;
}
/**
 * revoked: a REVOKED event; reassigned: ASSIGNED at a higher epoch replaces
 * it; not-reannounced: missing from a fresh watch snapshot; moved: a save was
 * fenced; fenced: the node was fenced and registers again; deregistered: stop;
 * handed-over: a planned move took it, with the final state onHandover gave.
 */
export type RevokeReason = "revoked" | "reassigned" | "not-reannounced" | "moved" | "fenced" | "deregistered" | "handed-over";
export interface RevokedInfo {
  readonly meetingId: string;
  readonly epoch: number;
  readonly reason: RevokeReason;
}
export interface HeartbeatInfo {
  readonly leaseTtlMs: number;
  readonly draining: boolean;
}
export interface CheckpointSavedInfo {
  readonly meetingId: string;
  readonly epoch: number;
  readonly sequence: number;
  readonly bytes: number;
}

/** A planned move of the meeting began: onHandover is being called. */
export interface HandoverInfo {
  readonly meetingId: string;
  readonly epoch: number;
}
/** The coordinator took the final state; the meeting now lives on `toNodeId` at `epoch`. */
export interface HandedOverInfo {
  readonly meetingId: string;
  readonly toNodeId: string;
  readonly epoch: number;
  readonly sequence: number;
}
export interface ShutdownOptions {
  /**
   * Meetings that end within this many ms end here; the rest are then
   * handed over (onHandover), and the node deregisters. 0: hand over now.
   */
  readonly deadlineMs: number;
  /**
   * How long after the deadline to wait for the hand-overs before
   * deregistering anyway (what is left then moves with its last
   * checkpoint, as with stop({ deregister: true })); default 15,000.
   */
  readonly handOverWaitMs?: number;
}

export interface AgentEvents {
  registered: [RegisteredInfo];
  reregistered: [ReregisteredInfo];
  assigned: [AssignedInfo];
  revoked: [RevokedInfo];
  heartbeat: [HeartbeatInfo];
  checkpoint: [CheckpointSavedInfo];
  handover: [HandoverInfo];
  handedOver: [HandedOverInfo];
  error: [Error];
}

export interface StopOptions {
  /** Save every held meeting once, then Deregister (its meetings move at once), then onRevoked for each. */
  readonly deregister?: boolean;
}
