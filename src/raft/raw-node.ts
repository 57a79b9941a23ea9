/**
 * The thread-safe-by-construction face of the core for a driver: feed it
 * ticks, messages and proposals; take a Ready; carry it out in the order
 * the Ready documents; call advance(). Nothing here does I/O.
 */
import type { RaftConfig } from "./config.js";
import { ProposalDroppedError } from "./errors.js";
import { type InvalidMessageError, validateMessage } from "./message-validation.js";
import { type ProposalPosition, Raft } from "./raft.js";
import type { Storage } from "./storage.js";
import {
  type ConfChange,
  type ConfState,
  EntryType,
  type HardState,
  type Message,
  MessageType,
  type NodeId,
  type Ready,
  type SoftState,
  StateRole,
  message,
} from "./types.js";

export interface Status {
  readonly id: NodeId;
  readonly term: number;
  readonly vote: NodeId;
  readonly lead: NodeId;
  readonly role: StateRole;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly confState: ConfState;
  readonly leadTransferee: NodeId;
  /** On the leader: each member's match index. */
  readonly progress: ReadonlyMap<NodeId, { match: number; next: number; state: string }>;
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

export class RawNode {
  readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  /** What the outstanding Ready handed out, for advance(). */
  private pending: Ready | undefined;

  /**
   * Builds the core from persisted state. `storage` must already hold what
   * the member persisted before (hard state, snapshot, log).
   */
  constructor(config: RaftConfig, storage: Storage) {
    this.raft = new Raft(config, storage);
    this.prevSoftState = this.softState();
    this.prevHardState = this.hardState();
  }

  tick(): void {
    this.raft.tick();
  }

  /** Ticks until one can act (Raft.ticksUntilDue): how long the driver may sleep. */
  ticksUntilDue(): number {
    return this.raft.ticksUntilDue();
  }

  /** Starts an election now (tests, bootstrapping). */
  campaign(): void {
    this.raft.step(message({ type: MessageType.Hup, from: this.raft.id }));
  }

  /**
   * Proposes commands (many at once become one append: group commit).
   * Returns their last position when this member leads; throws a typed
   * error when they cannot be accepted.
   */
  propose(...commands: Uint8Array[]): ProposalPosition | undefined {
    if (commands.length === 0) throw new ProposalDroppedError("nothing to propose");
    return this.raft.propose(commands.map((data) => ({ type: EntryType.Normal, data })));
  }

  /** Proposes a membership change, encoded by the caller (see conf-change.ts). */
  proposeConfChange(encoded: Uint8Array): ProposalPosition | undefined {
    return this.raft.propose([{ type: EntryType.ConfChange, data: encoded }]);
  }

  /** Applies a committed membership change (when its entry is applied). */
  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /**
   * Steps a message received from a peer. Malformed messages are refused
   * with a typed error and change nothing.
   */
  step(m: Message): InvalidMessageError | undefined {
    const invalid = validateMessage(m);
    if (invalid) return invalid;
    // Responses from members we do not know are meaningless; requests from
    // them are still handled (a new member's first contact).
    this.raft.step(m);
    return undefined;
  }

  /**
   * Asks for a linearizable read point. A ReadState with this `ctx` appears
   * in a later Ready; the read may be served once applied ≥ its index. If
   * leadership is lost meanwhile it never appears: callers time out.
   */
  readIndex(ctx: Uint8Array): void {
    if (this.raft.role !== StateRole.Leader && this.raft.lead === "") {
      throw new ProposalDroppedError("no leader is known to confirm a read");
    }
    this.raft.step(message({ type: MessageType.ReadIndex, from: this.raft.id, context: ctx }));
  }

  transferLeadership(to: NodeId): void {
    this.raft.step(message({ type: MessageType.TransferLeader, from: to }));
  }

  /** The transport could not deliver to `id` (its stream broke or stalled, or messages were dropped): a leader probes it again. */
  reportUnreachable(id: NodeId): void {
    this.raft.step(message({ type: MessageType.Unreachable, from: id }));
  }

  /**
   * The transport lost its connection to `id` (refused, reset, dropped),
   * as when its process died; not for a peer that is merely slow. A
   * follower whose leader this is campaigns soon instead of waiting out
   * the election timeout (see Raft.leaderLost).
   */
  reportPeerDown(id: NodeId): void {
    this.raft.peerDown(id);
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.step(message({ type: MessageType.SnapStatus, from: id, reject: !ok }));
  }

  private softState(): SoftState {
    return { lead: this.raft.lead, role: this.raft.role };
  }

  private hardState(): HardState {
    return { term: this.raft.term, vote: this.raft.vote, commit: this.raft.log.committed };
  }

  hasReady(): boolean {
    const r = this.raft;
    const ss = this.softState();
    return (
      ss.lead !== this.prevSoftState.lead ||
      ss.role !== this.prevSoftState.role ||
      !sameHardState(this.hardState(), this.prevHardState) ||
      r.log.unstable.entries.length > 0 ||
      r.log.unstable.snapshot !== undefined ||
      r.log.hasNextCommittedEntries() ||
      r.msgs.length > 0 ||
      r.msgsAfterPersist.length > 0 ||
      r.readStates.length > 0
    );
  }

  /**
   * The next batch of work. Call advance() after carrying it out, before the
   * next ready(). Calling ready() twice without advance() is a bug.
   */
  ready(): Ready {
    if (this.pending) throw new Error("invariant: ready() called again before advance()");
    const r = this.raft;
    const ss = this.softState();
    const hs = this.hardState();
    const hardStateChanged = !sameHardState(hs, this.prevHardState);
    const termOrVoteChanged = hs.term !== this.prevHardState.term || hs.vote !== this.prevHardState.vote;
    const skipTermAndVote = r.config.bugs?.skipPersistTermAndVote === true;
    let messages = r.msgs;
    let messagesAfterPersist = r.msgsAfterPersist;
    // A message stamped with a new term or vote speaks for state that must
    // be on disk first, so everything waits for the write.
    if ((termOrVoteChanged || r.log.unstable.snapshot) && !skipTermAndVote) {
      messagesAfterPersist = [...messages, ...messagesAfterPersist];
      messages = [];
    }
    if (skipTermAndVote) {
      messages = [...messages, ...messagesAfterPersist];
      messagesAfterPersist = [];
    }
    const rd: Ready = {
      ...(ss.lead !== this.prevSoftState.lead || ss.role !== this.prevSoftState.role ? { softState: ss } : {}),
      ...(hardStateChanged ? { hardState: skipTermAndVote ? { term: 0, vote: "", commit: hs.commit } : hs } : {}),
      entries: r.log.unstableEntries(),
      ...(r.log.unstable.snapshot ? { snapshot: r.log.unstable.snapshot } : {}),
      committedEntries: r.log.nextCommittedEntries(),
      messages,
      messagesAfterPersist,
      readStates: r.readStates,
    };
    r.msgs = [];
    r.msgsAfterPersist = [];
    r.readStates = [];
    this.prevSoftState = ss;
    if (hardStateChanged) this.prevHardState = hs;
    this.pending = rd;
    return rd;
  }

  /**
   * Acknowledges the outstanding Ready: its entries, hard state and
   * snapshot are on disk, and its committed entries are applied.
   */
  advance(): void {
    const rd = this.pending;
    if (!rd) throw new Error("invariant: advance() without a Ready");
    this.pending = undefined;
    const log = this.raft.log;
    const last = rd.entries[rd.entries.length - 1];
    if (last) log.stableTo(last.index, last.term);
    if (rd.snapshot) {
      log.stableSnapTo(rd.snapshot.metadata.index);
      if (rd.snapshot.metadata.index > log.applied) log.applied = rd.snapshot.metadata.index;
    }
    const lastApplied = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastApplied) {
      log.appliedTo(lastApplied.index);
      this.raft.reduceUncommittedSize(rd.committedEntries);
    }
    this.raft.onPersisted();
  }

  status(): Status {
    const r = this.raft;
    const progress = new Map<NodeId, { match: number; next: number; state: string }>();
    if (r.role === StateRole.Leader) {
      for (const [id, pr] of r.prs) progress.set(id, { match: pr.match, next: pr.next, state: pr.state });
    }
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      lead: r.lead,
      role: r.role,
      commit: r.log.committed,
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      confState: r.confState(),
      leadTransferee: r.leadTransferee,
      progress,
    };
  }
}
