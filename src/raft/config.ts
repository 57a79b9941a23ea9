/**
 * Configuration of one Raft member's core. `validateConfig` runs first in
 * the constructor; every rule's message names the field and its value.
 */
import { ConfigError } from "./errors.js";
import type { RandomSource } from "./random.js";
import type { NodeId } from "./types.js";

/** How a leader confirms it may serve a read at its commit index. */
export enum ReadOnlyOption {
  /** ReadIndex: one heartbeat round to a quorum confirms leadership. */
  Safe = "safe",
  /**
   * Leader lease: serve at once while a quorum acknowledged a heartbeat sent
   * less than `electionTick - leaseMarginTicks` ticks ago. Sound only with
   * check-quorum (followers refuse votes while they hear a leader) and only
   * while no member's clock runs faster than the leader's by more than the
   * margin: that bound on clock drift is the assumption.
   */
  LeaseBased = "lease",
}

/**
 * Deliberate bugs, for proving that the simulation's checkers bite. Never
 * set outside tests.
 */
export interface TestingBugs {
  /** (1) A leader answers reads at once without confirming leadership. */
  readonly readWithoutQuorum?: boolean;
  /** (2) Entries of an earlier term committed by counting replicas. */
  readonly commitPriorTermByCount?: boolean;
  /** (3) Term and vote never reach disk before the member answers. */
  readonly skipPersistTermAndVote?: boolean;
  /** (4) The log truncated on index alone, without a term conflict. */
  readonly truncateOnIndex?: boolean;
  /** (5) ReadIndex answered before an entry of the current term commits. */
  readonly readIndexBeforeTermCommit?: boolean;
  /** (6) The log up-to-date check in votes reversed. */
  readonly reverseUpToDateCheck?: boolean;
  /** (8) A vote response of an older term is counted in this term's election. */
  readonly countStaleVotes?: boolean;
  /** (9) A ReadIndex round is confirmed by one acknowledgement fewer than a quorum. */
  readonly readQuorumMiscount?: boolean;
  /** (10) The lease runs from when a heartbeat's ack arrives, not from when the heartbeat it echoes was sent. */
  readonly leaseFromAckArrival?: boolean;
  /** (11) A follower's commit index follows the leader's beyond the last entry the append carried (Figure 2). */
  readonly commitBeyondLastNew?: boolean;
}

export interface RaftConfig {
  readonly id: NodeId;
  /** Ticks without hearing a leader before a follower campaigns (randomized in [n, 2n)). */
  readonly electionTick: number;
  /** Ticks between the leader's heartbeats. Must be < electionTick. */
  readonly heartbeatTick: number;
  /**
   * Ticks between the heartbeats of a leader that appended nothing for an
   * election timeout (default heartbeatTick): an idle group's followers
   * wake less often, and a busy one keeps the short interval that holds it
   * together under load. At least heartbeatTick, less than electionTick.
   */
  readonly idleHeartbeatTick?: number;
  /** Seeded randomness for election timeouts. */
  readonly random: RandomSource;
  /** The index already applied by the state machine at restart. */
  readonly applied: number;
  /** Max bytes of entries in one append message (at least one entry is sent). */
  readonly maxSizePerMsg: number;
  /** Max append messages in flight to one follower (pipelining window). */
  readonly maxInflightMsgs: number;
  /** Max bytes of entries in flight to one follower; 0 for no limit. */
  readonly maxInflightBytes: number;
  /** Max bytes of proposed-but-uncommitted entries on the leader; 0 for no limit. */
  readonly maxUncommittedEntriesSize: number;
  /** Max bytes of committed entries handed out in one Ready. */
  readonly maxCommittedSizePerReady: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly readOnlyOption: ReadOnlyOption;
  /** Safety margin of the lease, in ticks, for clock drift. */
  readonly leaseMarginTicks: number;
  /** Followers forward proposals to the leader (else they are refused). */
  readonly forwardProposals: boolean;
  readonly bugs?: TestingBugs;
}

export function defaultConfig(id: NodeId, random: RandomSource): RaftConfig {
  return {
    id,
    electionTick: 10,
    heartbeatTick: 1,
    random,
    applied: 0,
    maxSizePerMsg: 1024 * 1024,
    maxInflightMsgs: 256,
    maxInflightBytes: 32 * 1024 * 1024,
    maxUncommittedEntriesSize: 64 * 1024 * 1024,
    maxCommittedSizePerReady: 16 * 1024 * 1024,
    preVote: true,
    checkQuorum: true,
    readOnlyOption: ReadOnlyOption.Safe,
    leaseMarginTicks: 2,
    forwardProposals: true,
  };
}

function requireInteger(field: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new ConfigError(`${field} must be an integer at least ${min}, got ${value}`);
  }
}

/** Throws ConfigError naming the first field that breaks a rule. */
export function validateConfig(c: RaftConfig): RaftConfig {
  if (typeof c.id !== "string" || !/^[A-Za-z0-9._-]{1,64}$/.test(c.id)) {
    throw new ConfigError(`id must match ^[A-Za-z0-9._-]{1,64}$, got ${JSON.stringify(c.id)}`);
  }
  requireInteger("heartbeatTick", c.heartbeatTick, 1);
  requireInteger("electionTick", c.electionTick, 1);
  if (c.electionTick <= c.heartbeatTick) {
    throw new ConfigError(`electionTick (${c.electionTick}) must be greater than heartbeatTick (${c.heartbeatTick})`);
  }
  if (c.idleHeartbeatTick !== undefined) {
    requireInteger("idleHeartbeatTick", c.idleHeartbeatTick, c.heartbeatTick);
    if (c.idleHeartbeatTick >= c.electionTick) {
      throw new ConfigError(`idleHeartbeatTick (${c.idleHeartbeatTick}) must be less than electionTick (${c.electionTick})`);
    }
  }
  requireInteger("applied", c.applied, 0);
  requireInteger("maxSizePerMsg", c.maxSizePerMsg, 1);
  requireInteger("maxInflightMsgs", c.maxInflightMsgs, 1);
  requireInteger("maxInflightBytes", c.maxInflightBytes, 0);
  if (c.maxInflightBytes !== 0 && c.maxInflightBytes < c.maxSizePerMsg) {
    throw new ConfigError(`maxInflightBytes (${c.maxInflightBytes}) must be 0 or at least maxSizePerMsg (${c.maxSizePerMsg})`);
  }
  requireInteger("maxUncommittedEntriesSize", c.maxUncommittedEntriesSize, 0);
  requireInteger("maxCommittedSizePerReady", c.maxCommittedSizePerReady, 1);
  requireInteger("leaseMarginTicks", c.leaseMarginTicks, 0);
  if (c.readOnlyOption === ReadOnlyOption.LeaseBased) {
    if (!c.checkQuorum) throw new ConfigError(`readOnlyOption "lease" requires checkQuorum, got checkQuorum false`);
    if (c.leaseMarginTicks >= c.electionTick) {
      throw new ConfigError(`leaseMarginTicks (${c.leaseMarginTicks}) must be less than electionTick (${c.electionTick})`);
    }
  } else if (c.readOnlyOption !== ReadOnlyOption.Safe) {
    throw new ConfigError(`readOnlyOption must be "safe" or "lease", got ${JSON.stringify(c.readOnlyOption)}`);
  }
  return c;
}
