/**
 * What a RaftDriver tells the member around it: the events it emits, the
 * counts it keeps as plain numbers, the timings it reports to an observer
 * (for metrics), and what a backup captures.
 */
import type { ConfState, NodeId } from "../raft/types.js";

/** Timings the driver reports as they happen, for a member's metrics. Called on the loop: they must only record. */
export interface DriverObserver {
  /** One synced write of a Ready (entries, hard state, snapshot). */
  diskWrite(seconds: number): void;
  /** Applying one Ready's committed entries (`entries` of them). */
  applied(seconds: number, entries: number): void;
}

/** Why a proposal failed, as the driver counts it. */
export type ProposalFailure = "not_leader" | "dropped" | "timeout" | "stopped";

/** Counts the driver keeps as plain numbers (read by a member's metrics when scraped). */
export interface DriverStats {
  /** Proposals committed and applied, their proposer answered. */
  proposalsCommitted: number;
  proposalsFailed: Record<ProposalFailure, number>;
  /** Snapshots installed from a leader. */
  snapshotsRestored: number;
}

export interface LeaderChange {
  readonly leaderId: NodeId;
  readonly term: number;
  readonly isSelf: boolean;
}

/** A snapshot this member took: where, how big, and what it cost (encoding blocks the event loop). */
export interface SnapshotTaken {
  readonly index: number;
  readonly bytes: number;
  readonly encodeMs: number;
  readonly writeMs: number;
}

/** The replicated state at one applied index, captured for a backup (captureSnapshot). */
export interface CapturedSnapshot {
  readonly index: number;
  /** The term of the entry at `index`. */
  readonly term: number;
  /** The membership as applied at `index`. */
  readonly confState: ConfState;
  readonly data: Uint8Array;
}

/** A snapshot a leader sent, installed: the state machine restored from it. */
export interface SnapshotRestored {
  readonly index: number;
  readonly bytes: number;
  readonly restoreMs: number;
}
