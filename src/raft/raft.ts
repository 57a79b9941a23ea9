/**
 * The Raft state machine of one member: pure and deterministic. Time moves
 * only by `tick()`, input arrives only by `step()`, and every effect is
 * queued (messages, read states) for the driver, through RawNode's Ready.
 *
 * Roles are swapped functions (`stepRole`, `tickRole`), not subclasses:
 * `step` applies the term rules shared by all roles, then hands over.
 */
import { type RaftConfig, ReadOnlyOption, validateConfig } from "./config.js";
import { decodeConfChange } from "./conf-change.js";
import { ConfChangeError, CorruptStateError, NotLeaderError, ProposalDroppedError } from "./errors.js";
import { Progress, ProgressState } from "./progress.js";
import { VoteResult, committedIndex, hasQuorum, voteResult } from "./quorum.js";
import { RaftLog } from "./raft-log.js";
import { ReadOnly } from "./read-only.js";
import type { Storage } from "./storage.js";
import {
  type ConfChange,
  ConfChangeType,
  type ConfState,
  type Entry,
  EntryType,
  type Message,
  MessageType,
  type NodeId,
  type ReadState,
  type Snapshot,
  StateRole,
  entryBytes,
  isResponseMessage,
  message,
} from "./types.js";

export type CampaignKind = "pre-election" | "election" | "transfer";

/** A proposal's place in the log, known only on the leader that appended it. */
export interface ProposalPosition {
  readonly index: number;
  readonly term: number;
}

export class Raft {
  readonly id: NodeId;
  readonly log: RaftLog;
  term = 0;
  vote: NodeId = "";
  lead: NodeId = "";
  role: StateRole = StateRole.Follower;

  voters: NodeId[] = [];
  learners: NodeId[] = [];
  readonly prs = new Map<NodeId, Progress>();
  private readonly votes = new Map<NodeId, boolean>();

  /** Messages the driver may send before persisting (the leader's appends). */
  msgs: Message[] = [];
  /** Messages that answer on the strength of persisted state. */
  msgsAfterPersist: Message[] = [];
  readStates: ReadState[] = [];

  /** Ticks since the last reset, as used by every role. */
  electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  /** Monotonic tick counter: the leader's clock for its lease. */
  private now = 0;
  /** When this member, leading, last appended an entry: it heartbeats at the idle interval an election timeout later. */
  private lastAppendTick = 0;
  /**
   * In lease mode a member that just started refuses votes until this tick:
   * it may have acknowledged a leader's heartbeat before it restarted, and
   * that leader may still be serving reads on the strength of it.
   */
  private readonly refuseVotesUntil: number;
  /** Until this tick, a pre-candidate asks again within a few ticks (see leaderLost). */
  private eagerPreVoteUntil = 0;

  leadTransferee: NodeId = "";
  /** A TimeoutNow went out this term: another member may win without waiting out a lease. */
  private transferStartedThisTerm = false;
  /** Index of the latest conf change proposed; none may follow until it is applied. */
  pendingConfIndex = 0;
  uncommittedSize = 0;
  private readonly readOnly = new ReadOnly();
  /** Reads that arrived before this leader committed an entry of its term. */
  private pendingReadIndexMessages: Message[] = [];

  private stepRole: (m: Message) => void = () => {};
  private tickRole: () => void = () => {};

  constructor(
    readonly config: RaftConfig,
    storage: Storage,
  ) {
    validateConfig(config);
    this.id = config.id;
    this.log = new RaftLog(storage, config.maxCommittedSizePerReady);
    const { hardState, confState } = storage.initialState();
    this.applyConfState(confState);
    if (hardState.commit < this.log.committed || hardState.commit > this.log.lastIndex()) {
      throw new CorruptStateError(
        `hard state commit ${hardState.commit} is outside the log [${this.log.committed}, ${this.log.lastIndex()}]`,
      );
    }
    this.term = hardState.term;
    this.vote = hardState.vote;
    this.log.committed = hardState.commit;
    if (config.applied > this.log.committed) {
      throw new CorruptStateError(`applied ${config.applied} is past the commit index ${this.log.committed}`);
    }
    if (config.applied > this.log.applied) this.log.applied = config.applied;
    // Only a member that may have acknowledged a leader needs the wait: the
    // founding bootstrap writes term 1, and no leader exists before term 2.
    const mayHaveAckedALeader = hardState.term > 1;
    this.refuseVotesUntil = config.readOnlyOption === ReadOnlyOption.LeaseBased && mayHaveAckedALeader ? config.electionTick : 0;
    this.becomeFollower(this.term, "");
  }

  // ---------------------------------------------------------------- roles

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.role = StateRole.Follower;
    this.stepRole = this.stepFollower;
    this.tickRole = this.tickElection;
  }

  private becomePreCandidate(): void {
    // Term and vote stay as they are: a pre-election changes nothing durable.
    this.votes.clear();
    this.lead = "";
    this.role = StateRole.PreCandidate;
    this.stepRole = this.stepCandidate;
    this.tickRole = this.tickElection;
  }

  private becomeCandidate(): void {
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = StateRole.Candidate;
    this.stepRole = this.stepCandidate;
    this.tickRole = this.tickElection;
  }

  private becomeLeader(): void {
    this.reset(this.term);
    this.lead = this.id;
    this.role = StateRole.Leader;
    this.stepRole = this.stepLeader;
    this.tickRole = this.tickHeartbeat;
    for (const pr of this.prs.values()) pr.recentActive = true;
    // No membership change until this term's first entry is applied: the
    // leader must commit an entry of its own term before changing it.
    this.pendingConfIndex = this.log.lastIndex() + 1;
    this.appendEntries([{ type: EntryType.Normal, data: new Uint8Array(0) }]);
  }

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = "";
      this.transferStartedThisTerm = false;
    }
    this.lead = "";
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.config.electionTick + this.config.random.intBelow(this.config.electionTick);
    this.leadTransferee = "";
    this.votes.clear();
    const next = this.log.lastIndex() + 1;
    for (const [id, pr] of this.prs) {
      const fresh = new Progress(next, this.config.maxInflightMsgs, this.config.maxInflightBytes, pr.isLearner);
      if (id === this.id) fresh.match = this.persistedLastIndex();
      this.prs.set(id, fresh);
    }
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.readOnly.reset();
    this.pendingReadIndexMessages = [];
  }

  /** The last index that is on this member's disk and still part of its log. */
  private persistedLastIndex(): number {
    if (this.log.unstable.snapshot) return this.log.unstable.snapshot.metadata.index - 1;
    return Math.min(this.log.unstable.offset - 1, this.log.storage.lastIndex());
  }

  /** Whether this member may campaign: a voter of the current configuration. */
  promotable(): boolean {
    return this.voters.includes(this.id);
  }

  // ---------------------------------------------------------------- ticks

  tick(): void {
    this.now++;
    this.tickRole();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && (this.electionElapsed >= this.randomizedElectionTimeout || this.preVoteRetryDue())) {
      this.electionElapsed = 0;
      this.step(message({ type: MessageType.Hup, from: this.id }));
    }
  }

  /**
   * A pre-candidate that campaigned because its leader's connection broke
   * asks again after a few ticks while its pre-vote stays unanswered,
   * rather than after a whole election timeout. The other follower may not
   * have noticed the loss yet (its connection broke a little later, or its
   * process was busy): within its check-quorum lease it ignores a
   * campaign, and answers one only once it has noticed. A pre-vote changes
   * no term, so asking again disturbs nobody.
   */
  private preVoteRetryDue(): boolean {
    return (
      this.role === StateRole.PreCandidate &&
      this.now < this.eagerPreVoteUntil &&
      this.electionElapsed >= this.preVoteRetryTicks()
    );
  }

  private preVoteRetryTicks(): number {
    return Math.max(2, Math.ceil(this.config.electionTick / 6));
  }

  /**
   * How many more tick() calls until one of them can change anything: a
   * leader's heartbeat or quorum check, a campaign (or a pre-vote asked
   * again). Ticks before it only count; a driver may sleep until it and
   * give the core the ticks it slept through at once. Never late, at least 1;
   * Infinity when no tick can act (a learner).
   */
  ticksUntilDue(): number {
    if (this.role === StateRole.Leader) {
      return Math.max(1, Math.min(this.heartbeatInterval() - this.heartbeatElapsed, this.config.electionTick - this.electionElapsed));
    }
    if (!this.promotable()) return Infinity;
    let ticks = this.randomizedElectionTimeout - this.electionElapsed;
    if (this.role === StateRole.PreCandidate) {
      const retry = Math.max(1, this.preVoteRetryTicks() - this.electionElapsed);
      if (this.now + retry < this.eagerPreVoteUntil) ticks = Math.min(ticks, retry);
    }
    return Math.max(1, ticks);
  }

  /** The leader's heartbeat interval now: the idle one once it appended nothing for an election timeout. */
  private heartbeatInterval(): number {
    const idle = this.config.idleHeartbeatTick ?? this.config.heartbeatTick;
    return this.now - this.lastAppendTick >= this.config.electionTick ? idle : this.config.heartbeatTick;
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.config.electionTick) {
      this.electionElapsed = 0;
      if (this.config.checkQuorum) this.step(message({ type: MessageType.CheckQuorum, from: this.id }));
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.role === StateRole.Leader && this.leadTransferee !== "") this.leadTransferee = "";
    }
    if (this.role !== StateRole.Leader) return;
    if (this.heartbeatElapsed >= this.heartbeatInterval()) {
      this.heartbeatElapsed = 0;
      this.step(message({ type: MessageType.Beat, from: this.id }));
    }
  }

  // ---------------------------------------------------------------- step

  /** Handles one message (local or from a peer). Never throws for well-formed input. */
  step(m: Message): void {
    if (m.term === 0) {
      // Local message.
    } else if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        // With check-quorum, a member that heard from a leader within the
        // election timeout ignores campaigns: this is what stops a
        // partitioned member from disrupting a healthy group on return.
        const inLease =
          this.config.checkQuorum &&
          ((this.lead !== "" && this.electionElapsed < this.config.electionTick) || this.now < this.refuseVotesUntil);
        if (!m.transfer && inLease) return;
      }
      if (m.type === MessageType.PreVote) {
        // A pre-vote request never changes our term.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // A granted pre-vote is answered at the future term; not ours yet.
      } else {
        const fromLeader =
          m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap;
        this.becomeFollower(m.term, fromLeader ? m.from : "");
      }
    } else if (m.term < this.term) {
      if (this.config.bugs?.countStaleVotes && m.type === MessageType.VoteResp && this.role === StateRole.Candidate) {
        this.stepRole(m);
        return;
      }
      if ((this.config.checkQuorum || this.config.preVote) && (m.type === MessageType.Heartbeat || m.type === MessageType.App)) {
        // A stale leader (e.g. back from a partition) learns our term and
        // steps down, instead of being ignored forever.
        this.send(message({ type: MessageType.AppResp, to: m.from }));
      } else if (m.type === MessageType.PreVote) {
        this.send(message({ type: MessageType.PreVoteResp, to: m.from, term: this.term, reject: true }));
      }
      return;
    }

    switch (m.type) {
      case MessageType.Hup:
        this.hup();
        return;
      case MessageType.Vote:
      case MessageType.PreVote:
        this.handleVoteRequest(m);
        return;
      default:
        this.stepRole(m);
    }
  }

  private hup(): void {
    if (this.role === StateRole.Leader || !this.promotable()) return;
    if (this.hasUnappliedConfChange()) return;
    this.campaign(this.config.preVote ? "pre-election" : "election");
  }

  private hasUnappliedConfChange(): boolean {
    if (this.log.committed <= this.log.applied) return false;
    const lo = Math.max(this.log.applied + 1, this.log.firstIndex());
    const ents = this.log.slice(lo, this.log.committed + 1, Infinity);
    return ents.some((e) => e.type === EntryType.ConfChange);
  }

  campaign(kind: CampaignKind): void {
    if (!this.promotable()) return;
    let voteType: MessageType;
    let term: number;
    if (kind === "pre-election") {
      this.becomePreCandidate();
      voteType = MessageType.PreVote;
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteType = MessageType.Vote;
      term = this.term;
    }
    if (this.poll(this.id, true) === VoteResult.Won) {
      // A group of one wins at once.
      if (kind === "pre-election") this.campaign("election");
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of this.voters) {
      if (id === this.id) continue;
      this.send(message({ type: voteType, to: id, term, index: lastIndex, logTerm: lastTerm, transfer: kind === "transfer" }));
    }
  }

  private poll(from: NodeId, granted: boolean): VoteResult {
    if (!this.votes.has(from)) this.votes.set(from, granted);
    return voteResult(this.voters, this.votes);
  }

  private handleVoteRequest(m: Message): void {
    const isPre = m.type === MessageType.PreVote;
    const respType = isPre ? MessageType.PreVoteResp : MessageType.VoteResp;
    const canVote =
      this.vote === m.from ||
      (this.vote === "" && this.lead === "") ||
      // A pre-vote for a future term may be granted whatever we voted now.
      (isPre && m.term > this.term);
    const upToDate = this.config.bugs?.reverseUpToDateCheck
      ? !this.log.isUpToDate(m.index, m.logTerm) || (m.index === this.log.lastIndex() && m.logTerm === this.log.lastTerm())
      : this.log.isUpToDate(m.index, m.logTerm);
    // Two followers that lost the same leader often pre-campaign at once
    // with equal logs. Granting each other, both would go on to campaign
    // for real, each with its own vote: a split vote, and a whole election
    // timeout lost. Between two such pre-candidates only the lower id is
    // granted. Liveness only: a pre-vote decides nothing durable.
    const yieldsToUs =
      isPre &&
      this.role === StateRole.PreCandidate &&
      m.term === this.term + 1 &&
      m.index === this.log.lastIndex() &&
      m.logTerm === this.log.lastTerm() &&
      m.from > this.id;
    if (canVote && upToDate && !yieldsToUs) {
      // Granted responses carry the requested term (for a pre-vote, the
      // future term), so the candidate counts them.
      this.send(message({ type: respType, to: m.from, term: m.term }));
      if (!isPre) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send(message({ type: respType, to: m.from, term: this.term, reject: true }));
    }
  }

  // ---------------------------------------------------------------- follower

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.Prop:
        // Only our own proposals are relayed to the leader. One another
        // member sent here (it took us for the leader) is dropped: relayed,
        // it would reach the leader under a sender that is not the stream's,
        // and the transport drops such a batch whole (seen in the chaos
        // suite after a paused leader resumed). Its sender retries.
        if (this.lead !== "" && this.config.forwardProposals && m.from === this.id) {
          this.send(message({ ...m, to: this.lead, term: 0 }));
        }
        return;
      case MessageType.App:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppend(m);
        return;
      case MessageType.Heartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case MessageType.TransferLeader:
        if (this.lead !== "") this.send(message({ ...m, to: this.lead, term: 0 }));
        return;
      case MessageType.TimeoutNow:
        // Campaign at once, skipping the pre-vote: the leader asked us to.
        this.campaign("transfer");
        return;
      case MessageType.ReadIndex:
        // As for proposals: only our own reads are relayed.
        if (this.lead !== "" && m.from === this.id) this.send(message({ ...m, to: this.lead, term: 0 }));
        return;
      case MessageType.ReadIndexResp:
        this.readStates.push({ index: m.index, requestCtx: m.context! });
        return;
      default:
        return;
    }
  }

  /**
   * The transport lost its connection to `peer` (refused, reset, dropped:
   * not merely slow). Only a follower that loses its own leader acts on it.
   */
  peerDown(peer: NodeId): void {
    if (this.role === StateRole.Follower && peer === this.lead) this.leaderLost();
  }

  /**
   * The transport lost its connection to our leader. A leader whose process
   * died closes its connections at once, so waiting out a whole election
   * timeout (400–800 ms by default) only adds to the failover: forget the
   * leader, which lifts the check-quorum lease that makes this member
   * ignore campaigns, and campaign within a short random delay (spread so
   * two followers that lost the leader together rarely split the vote).
   * When the leader is in fact alive, the pre-vote fails against the
   * members that still hear it and no term moves; so this needs pre-vote.
   * Not in lease-read mode: there a follower must not vote within the
   * lease it granted, however the leader looks from here.
   */
  private leaderLost(): void {
    if (!this.config.preVote || this.config.readOnlyOption === ReadOnlyOption.LeaseBased) return;
    this.lead = "";
    this.eagerPreVoteUntil = this.now + 2 * this.config.electionTick;
    const soon = 1 + this.config.random.intBelow(Math.max(1, Math.floor(this.config.electionTick / 2)));
    this.electionElapsed = Math.max(this.electionElapsed, this.randomizedElectionTimeout - soon);
  }

  private handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      this.send(message({ type: MessageType.AppResp, to: m.from, index: this.log.committed }));
      return;
    }
    const last = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries, this.config.bugs);
    if (last !== undefined) {
      this.send(message({ type: MessageType.AppResp, to: m.from, index: last }));
      return;
    }
    // Fast backtracking: tell the leader the last index that could match,
    // skipping every entry of a term newer than the one it probed.
    const hintIndex = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send(
      message({
        type: MessageType.AppResp,
        to: m.from,
        index: m.index,
        reject: true,
        rejectHint: hintIndex,
        logTerm: this.log.term(hintIndex) ?? 0,
      }),
    );
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    // Echo the leader's send tick (index) and read context.
    this.send(message({ type: MessageType.HeartbeatResp, to: m.from, index: m.index, context: m.context }));
  }

  private handleSnapshot(m: Message): void {
    const snap = m.snapshot!;
    if (this.restore(snap)) {
      this.send(message({ type: MessageType.AppResp, to: m.from, index: this.log.lastIndex() }));
    } else {
      this.send(message({ type: MessageType.AppResp, to: m.from, index: this.log.committed }));
    }
  }

  /** Installs a snapshot from the leader; returns false when it brings nothing new. */
  private restore(snap: Snapshot): boolean {
    const { index, term, confState } = snap.metadata;
    if (index <= this.log.committed) return false;
    if (this.log.matchTerm(index, term)) {
      // Our log already has the snapshot's last entry: just fast-forward.
      this.log.commitTo(index);
      return false;
    }
    this.log.restore(snap);
    this.applyConfState(confState);
    return true;
  }

  // ---------------------------------------------------------------- candidate

  private stepCandidate(m: Message): void {
    const myResp = this.role === StateRole.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.App:
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        return;
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case myResp: {
        const result = this.poll(m.from, !m.reject);
        if (result === VoteResult.Won) {
          if (this.role === StateRole.PreCandidate) {
            this.campaign("election");
          } else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (result === VoteResult.Lost) {
          this.becomeFollower(this.term, "");
        }
        return;
      }
      default:
        return;
    }
  }

  // ---------------------------------------------------------------- leader

  private stepLeader(m: Message): void {
    switch (m.type) {
      case MessageType.Beat:
        this.bcastHeartbeat();
        return;
      case MessageType.CheckQuorum:
        if (!hasQuorum(this.voters, (id) => id === this.id || this.prs.get(id)?.recentActive === true)) {
          this.becomeFollower(this.term, "");
          return;
        }
        for (const [id, pr] of this.prs) pr.recentActive = id === this.id;
        return;
      case MessageType.Prop:
        // A forwarded proposal: refused ones are dropped silently.
        try {
          this.appendProposal(m.entries);
        } catch (err) {
          if (!(err instanceof ProposalDroppedError || err instanceof ConfChangeError)) throw err;
        }
        return;
      case MessageType.ReadIndex:
        this.handleReadIndex(m);
        return;
      case MessageType.TransferLeader:
        this.handleTransferLeader(m.from);
        return;
      default:
        break;
    }
    const pr = this.prs.get(m.from);
    if (!pr) return; // A member we no longer track.
    switch (m.type) {
      case MessageType.AppResp:
        this.handleAppendResponse(m, pr);
        return;
      case MessageType.HeartbeatResp:
        this.handleHeartbeatResponse(m, pr);
        return;
      case MessageType.SnapStatus:
        if (pr.state !== ProgressState.Snapshot) return;
        if (m.reject) pr.pendingSnapshot = 0;
        pr.becomeProbe();
        // Wait for a heartbeat response before probing again.
        pr.probeSent = true;
        return;
      case MessageType.Unreachable:
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        return;
      default:
        return;
    }
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    // An acknowledgement of entries we never had is not from an honest member.
    if (m.index > this.log.lastIndex()) return;
    pr.recentActive = true;
    if (m.reject) {
      // The follower's hint, refined by our own log: skip a whole term of
      // mismatching entries in one round trip.
      let next = m.rejectHint;
      if (m.logTerm > 0) next = this.log.findConflictByTerm(m.rejectHint, m.logTerm);
      if (pr.maybeDecrTo(m.index, next)) {
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) return;
    if (pr.state === ProgressState.Probe) {
      pr.becomeReplicate();
    } else if (pr.state === ProgressState.Snapshot && pr.match >= pr.pendingSnapshot) {
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === ProgressState.Replicate) {
      pr.inflights.freeLE(m.index);
    }
    if (this.maybeCommit()) {
      this.bcastAppend();
    } else if (wasPaused) {
      this.sendAppend(m.from);
    }
    while (this.maybeSendAppend(m.from, false)) {
      // Fill the pipelining window.
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
  }

  private handleHeartbeatResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    pr.probeSent = false;
    // The echoed send tick can never be in our future.
    pr.lastAckedHeartbeatTick = Math.max(pr.lastAckedHeartbeatTick, this.config.bugs?.leaseFromAckArrival ? this.now : Math.min(m.index, this.now));
    if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (pr.match < this.log.lastIndex()) this.sendAppend(m.from);
    // Lease mode falls back to a heartbeat round when the lease is not
    // valid, so acks are counted whatever the mode.
    if (!m.context) return;
    const acks = this.readOnly.recvAck(m.from, m.context);
    if (!acks || !this.readQuorum(acks)) return;
    for (const { request, index } of this.readOnly.advance(m.context)) this.answerRead(request, index);
  }

  /** Whether the members that acknowledged a ReadIndex round are a quorum of the voters. */
  private readQuorum(acks: ReadonlySet<NodeId>): boolean {
    if (this.config.bugs?.readQuorumMiscount) return [...acks].filter((id) => this.voters.includes(id)).length + 1 > this.voters.length / 2;
    return hasQuorum(this.voters, (id) => acks.has(id));
  }

  /** Commits what a quorum holds, if it is of this term. Returns whether commit moved. */
  maybeCommit(): boolean {
    const mci = committedIndex(this.voters, (id) => this.prs.get(id)?.match ?? 0);
    if (!this.log.maybeCommit(mci, this.term, this.config.bugs?.commitPriorTermByCount)) return false;
    this.releasePendingReads();
    return true;
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  private releasePendingReads(): void {
    if (this.pendingReadIndexMessages.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const waiting = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of waiting) this.handleReadIndex(m);
  }

  private handleReadIndex(m: Message): void {
    const bugs = this.config.bugs;
    if (bugs?.readWithoutQuorum) {
      this.answerRead(m, this.log.committed);
      return;
    }
    // Our commit index is only known to be the group's once an entry of our
    // own term has committed (§6.4 of the Raft thesis).
    if (!this.committedEntryInCurrentTerm() && !bugs?.readIndexBeforeTermCommit) {
      this.pendingReadIndexMessages.push(m);
      return;
    }
    if (this.config.readOnlyOption === ReadOnlyOption.LeaseBased && this.leaseIsValid()) {
      this.answerRead(m, this.log.committed);
      return;
    }
    this.readOnly.addRequest(this.log.committed, m);
    const acks = this.readOnly.recvAck(this.id, m.context!);
    if (acks && this.readQuorum(acks)) {
      for (const { request, index } of this.readOnly.advance(m.context!)) this.answerRead(request, index);
      return;
    }
    this.bcastHeartbeat(m.context);
  }

  /**
   * The leader lease: a quorum acknowledged heartbeats sent within the last
   * `electionTick - leaseMarginTicks` ticks, so (clocks running at the same
   * rate within the margin) none of them will vote for another member yet.
   * A transfer lets the target skip that wait, so it voids the lease.
   */
  private leaseIsValid(): boolean {
    if (this.transferStartedThisTerm || this.leadTransferee !== "") return false;
    const quorumTick = committedIndex(this.voters, (id) =>
      id === this.id ? this.now : (this.prs.get(id)?.lastAckedHeartbeatTick ?? -Infinity),
    );
    return quorumTick + this.config.electionTick - this.config.leaseMarginTicks > this.now;
  }

  private answerRead(request: Message, index: number): void {
    if (request.from === this.id || request.from === "") {
      this.readStates.push({ index, requestCtx: request.context! });
    } else {
      this.send(message({ type: MessageType.ReadIndexResp, to: request.from, index, context: request.context }));
    }
  }

  private handleTransferLeader(target: NodeId): void {
    const pr = this.prs.get(target);
    if (!pr || pr.isLearner || target === this.id) return;
    if (this.leadTransferee === target) return;
    this.leadTransferee = target;
    // The transfer must finish within one election timeout.
    this.electionElapsed = 0;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(target);
    else this.sendAppend(target);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.transferStartedThisTerm = true;
    this.send(message({ type: MessageType.TimeoutNow, to }));
  }

  // ---------------------------------------------------------------- proposals

  /**
   * Proposes entries on this member. On the leader they are appended and
   * their position returned; a follower forwards them (no position known).
   * Throws ProposalDroppedError / NotLeaderError / ConfChangeError when
   * they cannot be accepted, so callers never wait for nothing.
   */
  propose(entries: readonly { type: EntryType; data: Uint8Array }[]): ProposalPosition | undefined {
    if (this.role === StateRole.Leader) return this.appendProposal(entries);
    if (this.lead === "") throw new ProposalDroppedError("no leader is known; retry later");
    if (!this.config.forwardProposals) throw new NotLeaderError(this.lead);
    this.send(message({ type: MessageType.Prop, to: this.lead, entries: entries.map((e) => ({ ...e, index: 0, term: 0 })) }));
    return undefined;
  }

  private appendProposal(entries: readonly { type: EntryType; data: Uint8Array }[]): ProposalPosition {
    if (this.leadTransferee !== "") {
      throw new ProposalDroppedError(`leadership is being transferred to ${this.leadTransferee}`);
    }
    let confIndex = 0;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (e.type !== EntryType.ConfChange) continue;
      if (this.pendingConfIndex > this.log.applied || confIndex !== 0) {
        throw new ConfChangeError(
          `a membership change is pending (index ${Math.max(this.pendingConfIndex, confIndex)}, applied ${this.log.applied}); one at a time`,
        );
      }
      // An undecodable change would stop every member that applies it.
      decodeConfChange(e.data);
      confIndex = this.log.lastIndex() + 1 + i;
    }
    let bytes = 0;
    for (const e of entries) bytes += e.data.length;
    const limit = this.config.maxUncommittedEntriesSize;
    // Always admit something when nothing is outstanding, so a single large
    // proposal is not refused forever.
    if (limit > 0 && this.uncommittedSize > 0 && this.uncommittedSize + bytes > limit) {
      throw new ProposalDroppedError(`too many uncommitted bytes (${this.uncommittedSize} of ${limit})`);
    }
    this.uncommittedSize += bytes;
    if (confIndex !== 0) this.pendingConfIndex = confIndex;
    const last = this.appendEntries(entries);
    this.bcastAppend();
    return { index: last, term: this.term };
  }

  private appendEntries(entries: readonly { type: EntryType; data: Uint8Array }[]): number {
    let index = this.log.lastIndex();
    const ents: Entry[] = entries.map((e) => ({ term: this.term, index: ++index, type: e.type, data: e.data }));
    this.lastAppendTick = this.now;
    // The leader's own acknowledgement comes only once these are on disk
    // (see onPersisted): it never counts what it could still lose.
    return this.log.append(ents);
  }

  /** Called once committed entries were handed out: they no longer count as uncommitted. */
  reduceUncommittedSize(ents: readonly Entry[]): void {
    if (this.role !== StateRole.Leader) return;
    let bytes = 0;
    for (const e of ents) bytes += e.data.length;
    this.uncommittedSize = Math.max(0, this.uncommittedSize - bytes);
  }

  /** The driver persisted everything up to the unstable offset. */
  onPersisted(): void {
    if (this.role !== StateRole.Leader) return;
    const self = this.prs.get(this.id);
    if (!self) return;
    if (self.maybeUpdate(this.persistedLastIndex()) && this.maybeCommit()) this.bcastAppend();
  }

  // ---------------------------------------------------------------- sending

  private send(m: Message): void {
    const filled = m.term === 0 && m.type !== MessageType.Prop && m.type !== MessageType.ReadIndex && m.type !== MessageType.TransferLeader
      ? { ...m, from: this.id, term: this.term }
      : { ...m, from: m.from === "" ? this.id : m.from };
    if (isResponseMessage(m.type)) this.msgsAfterPersist.push(filled);
    else this.msgs.push(filled);
  }

  bcastAppend(): void {
    for (const id of this.prs.keys()) if (id !== this.id) this.sendAppend(id);
  }

  private sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  /** Sends the next append to `to` if its progress allows; returns whether one was sent. */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined || pr.next < this.log.firstIndex()) return this.sendSnapshot(to, pr);
    const ents = this.log.slice(pr.next, this.log.lastIndex() + 1, this.config.maxSizePerMsg);
    if (ents.length === 0 && !sendIfEmpty) return false;
    let bytes = 0;
    for (const e of ents) bytes += entryBytes(e);
    this.send(
      message({ type: MessageType.App, to, index: prevIndex, logTerm: prevTerm, entries: ents, commit: this.log.committed }),
    );
    pr.sentEntries(ents.length, prevIndex + ents.length, bytes);
    return true;
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive) return false;
    const snap = this.log.snapshot();
    if (snap.metadata.index === 0) throw new Error(`invariant: entries for ${to} are compacted but no snapshot exists`);
    pr.becomeSnapshot(snap.metadata.index);
    this.send(message({ type: MessageType.Snap, to, snapshot: snap }));
    return true;
  }

  private bcastHeartbeat(ctx: Uint8Array | undefined = this.readOnly.lastPendingContext()): void {
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue;
      // Never tell a follower to commit past what it is known to hold.
      const commit = Math.min(pr.match, this.log.committed);
      this.send(message({ type: MessageType.Heartbeat, to: id, commit, index: this.now, context: ctx }));
    }
  }

  // ---------------------------------------------------------------- membership

  private applyConfState(cs: ConfState): void {
    this.voters = [...cs.voters];
    this.learners = [...cs.learners];
    const next = this.log.lastIndex() + 1;
    const keep = new Set([...this.voters, ...this.learners]);
    for (const id of [...this.prs.keys()]) if (!keep.has(id)) this.prs.delete(id);
    for (const id of keep) {
      const isLearner = this.learners.includes(id);
      const pr = this.prs.get(id);
      if (pr) pr.isLearner = isLearner;
      else this.prs.set(id, new Progress(next, this.config.maxInflightMsgs, this.config.maxInflightBytes, isLearner));
    }
  }

  confState(): ConfState {
    return { voters: [...this.voters], learners: [...this.learners] };
  }

  /**
   * Applies a committed membership change; the driver calls it when it
   * applies the entry. A removed leader hands over to its most caught-up
   * voter and steps down.
   */
  applyConfChange(cc: ConfChange): ConfState {
    const voters = this.voters.filter((v) => v !== cc.nodeId);
    const learners = this.learners.filter((v) => v !== cc.nodeId);
    switch (cc.type) {
      case ConfChangeType.AddVoter:
        voters.push(cc.nodeId);
        break;
      case ConfChangeType.AddLearner:
        // Demoting a voter to learner is not supported: keep it a voter.
        if (this.voters.includes(cc.nodeId)) voters.push(cc.nodeId);
        else learners.push(cc.nodeId);
        break;
      case ConfChangeType.RemoveNode:
        break;
    }
    if (voters.length === 0) return this.confState(); // Never remove the last voter.
    const wasLeader = this.role === StateRole.Leader;
    this.applyConfState({ voters, learners });
    const added = this.prs.get(cc.nodeId);
    if (added && wasLeader) added.recentActive = true;
    if (!wasLeader) return this.confState();
    if (!this.prs.has(this.id)) {
      this.handOverAfterRemoval();
      return this.confState();
    }
    if (this.leadTransferee !== "" && !this.prs.has(this.leadTransferee)) this.leadTransferee = "";
    // The quorum changed: commit what it now covers, and tell everyone
    // (a new member learns of the log, the commit index moves on).
    this.maybeCommit();
    this.bcastAppend();
    return this.confState();
  }

  private handOverAfterRemoval(): void {
    let best: NodeId = "";
    let bestMatch = -1;
    for (const id of this.voters) {
      const m = this.prs.get(id)?.match ?? 0;
      if (m > bestMatch) [best, bestMatch] = [id, m];
    }
    if (best !== "" && bestMatch === this.log.lastIndex()) this.sendTimeoutNow(best);
    this.becomeFollower(this.term, "");
  }
}
