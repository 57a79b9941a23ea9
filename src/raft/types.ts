/**
 * The vocabulary of the Raft core: entries, hard state, messages, snapshots
 * and the Ready batch that the driver carries out. Plain data only, so every
 * value can be persisted (msgpackr), sent (gRPC bytes) or cloned (simulation).
 */

/** A member id, e.g. "n1". Unique within one Raft group. */
export type NodeId = string;

export enum EntryType {
  /** A command for the replicated state machine (may be empty: a no-op). */
  Normal = 0,
  /** A membership change; `data` is an encoded {@link ConfChange}. */
  ConfChange = 1,
}

export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** What must be on disk before a member answers anyone (Raft figure 2). */
export interface HardState {
  readonly term: number;
  /** The member voted for in `term`, or "" for none. */
  readonly vote: NodeId;
  readonly commit: number;
}

export const emptyHardState: HardState = { term: 0, vote: "", commit: 0 };

/** The membership of the group. Learners receive the log but never vote. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

export enum ConfChangeType {
  AddVoter = 0,
  AddLearner = 1,
  RemoveNode = 2,
}

/** One membership change at a time: add a voter, add a learner, remove. */
export interface ConfChange {
  readonly type: ConfChangeType;
  readonly nodeId: NodeId;
  /** Opaque to Raft: the transport address of the member, for the driver. */
  readonly context?: string;
}

export interface SnapshotMetadata {
  readonly index: number;
  readonly term: number;
  readonly confState: ConfState;
}

export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  /** The state machine's state as of `metadata.index`, opaque to Raft. */
  readonly data: Uint8Array;
}

export enum MessageType {
  /** Local: time to campaign (election timeout passed). */
  Hup = 0,
  /** Local on the leader: time to send heartbeats. */
  Beat = 1,
  /** A proposal; a follower forwards it to the leader. */
  Prop = 2,
  App = 3,
  AppResp = 4,
  Vote = 5,
  VoteResp = 6,
  PreVote = 7,
  PreVoteResp = 8,
  Snap = 9,
  Heartbeat = 10,
  HeartbeatResp = 11,
  /** Leader → follower: report of a failed snapshot send (local). */
  SnapStatus = 12,
  /** Local on the leader: a follower could not be reached. */
  Unreachable = 13,
  TransferLeader = 14,
  TimeoutNow = 15,
  ReadIndex = 16,
  ReadIndexResp = 17,
  /** Local on the leader: check that a quorum was heard from recently. */
  CheckQuorum = 18,
}

/**
 * One message between members (or a local input to the core). Fields not
 * used by a message type are left at their zero value.
 */
export interface Message {
  readonly type: MessageType;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
  /** App: term of the entry at `index`; Vote: last log term of the candidate. */
  readonly logTerm: number;
  /** App: index preceding `entries`; AppResp: last index matched or rejected. */
  readonly index: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
  readonly reject: boolean;
  /** AppResp on reject: the follower's hint of the index to retry from. */
  readonly rejectHint: number;
  readonly snapshot?: Snapshot;
  /** Vote: a campaign started by leadership transfer, which skips the lease check. */
  readonly transfer?: boolean;
  /** ReadIndex / Heartbeat: the request context being confirmed. */
  readonly context?: Uint8Array;
}

/** A linearizable read point: once applied ≥ index, the read may be served. */
export interface ReadState {
  readonly index: number;
  readonly requestCtx: Uint8Array;
}

export enum StateRole {
  Follower = "follower",
  PreCandidate = "pre-candidate",
  Candidate = "candidate",
  Leader = "leader",
}

export interface SoftState {
  readonly lead: NodeId;
  readonly role: StateRole;
}

/**
 * A batch of work for the driver. Order of the driver's duties:
 *  1. send `messages` (safe before persisting: the leader's appends);
 *  2. persist `snapshot`, `entries` and `hardState` in one atomic write;
 *  3. send `messagesAfterPersist`;
 *  4. apply `committedEntries` (and restore `snapshot` into the state machine);
 *  5. call `advance()`.
 */
export interface Ready {
  readonly softState?: SoftState;
  readonly hardState?: HardState;
  readonly entries: readonly Entry[];
  readonly snapshot?: Snapshot;
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly messagesAfterPersist: readonly Message[];
  readonly readStates: readonly ReadState[];
}

/** Builds a message with zero values for the fields not given. */
export function message(fields: Partial<Message> & Pick<Message, "type">): Message {
  return {
    from: "",
    to: "",
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    ...fields,
  };
}

export function isLocalMessage(type: MessageType): boolean {
  return (
    type === MessageType.Hup ||
    type === MessageType.Beat ||
    type === MessageType.Unreachable ||
    type === MessageType.SnapStatus ||
    type === MessageType.CheckQuorum
  );
}

export function isResponseMessage(type: MessageType): boolean {
  return (
    type === MessageType.AppResp ||
    type === MessageType.VoteResp ||
    type === MessageType.PreVoteResp ||
    type === MessageType.HeartbeatResp ||
    type === MessageType.ReadIndexResp
  );
}

export function entryBytes(e: Entry): number {
  return e.data.length + 24;
}
