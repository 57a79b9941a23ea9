/**
 * Every error the Raft layer hands to its callers, in one place. Each has a
 * stable `code` that the edges (gRPC, HTTP) translate into their statuses.
 */
import type { NodeId } from "./types.js";

export abstract class RaftError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The proposal was refused without being appended: retry it (maybe elsewhere). */
export class ProposalDroppedError extends RaftError {
  readonly code = "PROPOSAL_DROPPED";
}

/** How a NotLeaderError's message begins: a forwarder reads it from the status a member answered with. */
export const NOT_LEADER_PREFIX = "not the leader";

/** This member is not the leader; `leaderId` is its best guess ("" if none). */
export class NotLeaderError extends RaftError {
  readonly code = "NOT_LEADER";
  constructor(
    readonly leaderId: NodeId,
    /** The leader's transport address when known ("" otherwise): where to retry. */
    readonly leaderAddress = "",
  ) {
    // No stack: this error is an answer (a follower's every heartbeat and
    // forwarded call make one), never a bug to trace, and capturing a
    // stack costs ten times the rest (3.8 against 0.4 µs here), which a
    // storm of beats at a follower turned into a tenth of a core.
    const stackFrames = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(
      leaderId
        ? `${NOT_LEADER_PREFIX}; the leader is ${leaderId}${leaderAddress ? ` at ${leaderAddress}` : ""}`
        : `${NOT_LEADER_PREFIX}; no leader is known`,
    );
    Error.stackTraceLimit = stackFrames;
  }
}

/** A configuration value broke a rule; the message names the field and value. */
export class ConfigError extends RaftError {
  readonly code = "CONFIG";
}

/** Leadership was lost before the operation could complete. */
export class LeadershipLostError extends RaftError {
  readonly code = "LEADERSHIP_LOST";
}

/** The operation did not complete within its deadline. */
export class RaftTimeoutError extends RaftError {
  readonly code = "TIMEOUT";
}

/** The requested log range has been compacted into a snapshot. */
export class CompactedError extends RaftError {
  readonly code = "COMPACTED";
}

/** The requested log range is not available yet. */
export class UnavailableError extends RaftError {
  readonly code = "UNAVAILABLE";
}

/** A membership change was refused (one is pending, or it is invalid). */
export class ConfChangeError extends RaftError {
  readonly code = "CONF_CHANGE";
}

/** Persistent state is impossible (e.g. commit past the end of the log). */
export class CorruptStateError extends RaftError {
  readonly code = "CORRUPT_STATE";
}

/** The member is stopping or stopped; the operation was not completed. */
export class StoppedError extends RaftError {
  readonly code = "STOPPED";
}
