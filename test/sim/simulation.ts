/**
 * A whole Raft group in memory, driven by one seed: members that crash and
 * restart losing what they had not persisted, a network that drops, delays,
 * duplicates, reorders and partitions, snapshots and compaction, leadership
 * transfers and membership changes, and clients writing, reading and
 * compare-and-setting concurrently. Safety is checked after every step and
 * the client history for linearizability at the end; then the faults stop
 * and the group must make progress within a bounded number of ticks.
 */
import {
  ConfChangeType,
  EntryType,
  MemoryStorage,
  MessageType,
  type NodeId,
  RaftError,
  RawNode,
  ReadOnlyOption,
  type Ready,
  SeededRandom,
  StateRole,
  type TestingBugs,
  decodeConfChange,
  defaultConfig,
  encodeConfChange,
} from "../../src/raft/index.js";
import { type HistoryOp, type KvOp, checkLinearizable } from "../support/linearizability.js";
import { SafetyChecker } from "./invariants.js";
import { KvMachine, decodeCommand, encodeCommand } from "./kv-machine.js";
import { SimNetwork } from "./network.js";
import { MembershipChanger } from "./membership-changer.js";

export interface SimOptions {
  readonly seed: number;
  readonly members: number;
  /** Steps (ticks) of the faulty phase. */
  readonly steps?: number;
  readonly bugs?: TestingBugs;
  /** A deliberate bug in the simulated driver: acknowledgements go out before the write they acknowledge is done. */
  readonly ackBeforeWrite?: boolean;
  /** Force a read mode; by default a quarter of the seeds use the lease. */
  readonly readMode?: ReadOnlyOption;
  readonly faults?: boolean;
}

export interface SimResult {
  readonly seed: number;
  readonly steps: number;
  readonly violations: readonly string[];
  readonly ops: number;
  readonly acked: number;
  /** How much of each kind of event the run saw, so a test can tell the faults really happened. */
  readonly coverage: Readonly<Record<CoverageKey, number>>;
}

export type CoverageKey =
  | "crashes"
  | "restarts"
  | "partitions"
  | "leaderTerms"
  | "snapshotsSent"
  | "compactions"
  | "transfers"
  | "memberReplacements"
  | "reads"
  | "leaseReads";

const KEYS = ["a", "b", "c"];
const ELECTION_TICK = 10;
const OP_TIMEOUT = 60;
const LIVENESS_BOUND = 400;

/** One simulated member: its disk survives a crash, the rest does not. */
export class SimMember {
  raw: RawNode | undefined;
  kv = new KvMachine();
  applied = 0;
  /** Bumped on every crash, so clients notice their member went away. */
  incarnation = 0;
  readonly results = new Map<string, { index: number; result: import("../support/linearizability.js").KvResult }>();
  readStates: { index: number; ctx: string }[] = [];
  /** A Ready whose disk write is in flight; meanwhile the member receives and ticks, as RaftDriver does while it awaits the write. */
  writing: { rd: Ready; doneAt: number; powerLoss: boolean; delayed: boolean } | undefined;
  /** The highest commit index this member announced as leader and the simulation checked. */
  checkedCommit = 0;

  constructor(
    readonly id: NodeId,
    public disk: MemoryStorage,
  ) {}
}

interface ClientOp {
  readonly opId: string;
  readonly op: KvOp;
  readonly call: number;
  readonly via: SimMember;
  readonly incarnation: number;
  /** For reads: the highest acknowledged write index when the read began. */
  readonly minIndex: number;
}

export class Simulation {
  readonly rng: SeededRandom;
  readonly network: SimNetwork;
  readonly members = new Map<NodeId, SimMember>();
  readonly checker: SafetyChecker;
  readonly history: HistoryOp[] = [];
  now = 0;
  private readonly readMode: ReadOnlyOption;
  private readonly smallMessages: boolean;
  /** A third of the seeds are violent: leaders crash and get cut off often. */
  private readonly violence: number;
  private readonly clients: (ClientOp | undefined)[] = [undefined, undefined, undefined];
  private opSeq = 0;
  private maxAckedIndex = 0;
  private readonly ackedWrites: { opId: string; index: number }[] = [];
  private readonly membership: MembershipChanger;
  faultsOn: boolean;
  clientsOn = true;
  readonly coverage: Record<CoverageKey, number> = {
    crashes: 0,
    restarts: 0,
    partitions: 0,
    leaderTerms: 0,
    snapshotsSent: 0,
    compactions: 0,
    transfers: 0,
    memberReplacements: 0,
    reads: 0,
    leaseReads: 0,
  };
  /** Violent seeds strike fresh leaders: the elections of Raft's figure 8. */
  private lastLeaderTerm = 0;
  private strike: { at: number; id: NodeId; crash: boolean } | undefined;

  constructor(readonly options: SimOptions) {
    this.rng = new SeededRandom(options.seed);
    this.network = new SimNetwork(this.rng.fork());
    this.checker = new SafetyChecker(() => this.now);
    this.faultsOn = options.faults ?? true;
    this.readMode = options.readMode ?? (this.rng.chance(0.25) ? ReadOnlyOption.LeaseBased : ReadOnlyOption.Safe);
    this.smallMessages = this.rng.chance(0.5);
    this.violence = this.rng.chance(0.33) ? 8 : 1;
    const ids = Array.from({ length: options.members }, (_, i) => `n${i + 1}`);
    for (const id of ids) {
      const m = new SimMember(id, MemoryStorage.bootstrap(ids));
      this.members.set(id, m);
      this.start(m);
    }
    if (this.faultsOn) {
      this.network.faults = {
        dropRate: this.rng.next() * 0.1,
        duplicateRate: this.rng.next() * 0.05,
        maxDelay: this.rng.intBelow(4),
      };
    }
    this.membership = new MembershipChanger(this);
  }

  // ------------------------------------------------------------ members

  start(m: SimMember): void {
    const config = {
      ...defaultConfig(m.id, this.rng.fork()),
      electionTick: ELECTION_TICK,
      heartbeatTick: 1,
      // Some seeds send one entry per append, so acknowledgements cover
      // partial ranges (what the commit rule of §5.4.2 is about).
      maxSizePerMsg: this.smallMessages ? 1 : 4096,
      maxInflightMsgs: this.smallMessages ? 2 : 8,
      maxInflightBytes: 64 * 1024,
      readOnlyOption: this.readMode,
      applied: m.disk.snapshot().metadata.index,
      ...(this.options.bugs ? { bugs: this.options.bugs } : {}),
    };
    m.kv = KvMachine.restore(m.disk.snapshot().data);
    m.applied = config.applied;
    m.readStates = [];
    m.results.clear();
    m.raw = new RawNode(config, m.disk);
    this.coverage.restarts++;
  }

  crash(m: SimMember): void {
    if (m.raw) this.coverage.crashes++;
    m.raw = undefined;
    m.writing = undefined;
    m.checkedCommit = 0;
    m.incarnation++;
    // A crashed process's connections close: most peers' transports notice
    // at once and report it (GrpcTransport does when its stream's connection is lost).
    for (const other of this.alive()) {
      if (this.rng.chance(0.8)) other.raw!.reportPeerDown(m.id);
    }
  }

  alive(): SimMember[] {
    return [...this.members.values()].filter((m) => m.raw !== undefined);
  }

  leader(): SimMember | undefined {
    let best: SimMember | undefined;
    for (const m of this.alive()) {
      if (m.raw!.raft.role === StateRole.Leader && (!best || m.raw!.raft.term > best.raw!.raft.term)) best = m;
    }
    return best;
  }

  private noteRole(m: SimMember): void {
    const r = m.raw?.raft;
    if (r && r.role === StateRole.Leader) this.checker.noteLeader(m.id, r.term, m.raw!);
  }

  // ------------------------------------------------------------ the loop

  /** One tick of the world: deliver, tick, carry out Readies, clients, faults. */
  step(): void {
    this.now++;
    for (const msg of this.network.takeDue(this.now)) {
      const to = this.members.get(msg.to);
      const delivered = to?.raw !== undefined && this.network.connected(msg.from, msg.to);
      if (!delivered) {
        if (msg.type === MessageType.Snap) this.members.get(msg.from)?.raw?.reportSnapshot(msg.to, false);
        continue;
      }
      const err = to.raw!.step(msg);
      // Like a real transport, report a delivered snapshot to its sender.
      if (msg.type === MessageType.Snap) this.members.get(msg.from)?.raw?.reportSnapshot(msg.to, true);
      if (err) this.checker.note(`member ${to.id} refused a message from ${msg.from}: ${err.message}`);
      this.noteRole(to);
    }
    for (const m of this.alive()) {
      m.raw!.tick();
      this.noteRole(m);
    }
    this.processReadies();
    this.runClients();
    if (this.faultsOn) this.injectFaults();
    this.membership.step();
  }

  processReadies(): void {
    for (let round = 0; round < 10; round++) {
      let any = false;
      for (const m of this.alive()) {
        if (m.writing) {
          if (m.writing.doneAt > this.now) continue;
          any = true;
          this.finishReady(m);
        } else if (m.raw!.hasReady()) {
          any = true;
          this.startReady(m, m.raw!.ready());
        } else {
          continue;
        }
        this.noteRole(m);
      }
      if (!any) return;
    }
  }

  private send(msgs: readonly import("../../src/raft/index.js").Message[]): void {
    for (const msg of msgs) {
      if (msg.type === MessageType.Snap) this.coverage.snapshotsSent++;
      const ok = this.network.send(msg, this.now);
      if (!ok && msg.type === MessageType.Snap) this.members.get(msg.from)?.raw?.reportSnapshot(msg.to, false);
    }
  }

  /**
   * A leader commits an entry only once a majority of the voters hold it on
   * disk; it can apply (and answer) before its own write is done, so this
   * is what makes an acknowledged write survive any minority of crashes.
   * Checked at each commit a leader announces, against the disks.
   */
  private checkCommitIsDurable(m: SimMember, rd: Ready): void {
    const r = m.raw!.raft;
    const commit = rd.hardState?.commit ?? 0;
    if (r.role !== StateRole.Leader || commit <= m.checkedCommit) return;
    m.checkedCommit = commit;
    const term = r.log.term(commit);
    if (term === undefined) return; // compacted: checked when it was committed
    const holders = r.voters.filter((id) => {
      const disk = this.members.get(id)?.disk;
      if (!disk || disk.lastIndex() < commit) return false;
      return disk.snapshot().metadata.index >= commit || disk.term(commit) === term;
    });
    if (holders.length * 2 <= r.voters.length) {
      this.checker.note(`step ${this.now}: ${m.id} committed ${commit} (term ${term}) held on disk by only ${holders.join(", ") || "none"} of ${r.voters.join(", ")}`);
    }
  }

  private startReady(m: SimMember, rd: Ready): void {
    this.checkCommitIsDurable(m, rd);
    // Power loss on a leader right after its disk write: the appends it was
    // sending in parallel never leave the machine, so it alone holds them.
    const powerLoss = this.faultsOn && rd.entries.length > 0 && m.raw!.raft.role === StateRole.Leader && this.rng.chance(0.005 * this.violence);
    if (!powerLoss) this.send(rd.messages);
    // As RaftDriver does, committed entries apply (and answer their clients)
    // while the Ready's write is in flight; a snapshot is restored first.
    if (!rd.snapshot) this.applyCommitted(m, rd);
    if (this.options.ackBeforeWrite) {
      this.send(rd.messagesAfterPersist);
      rd = { ...rd, messagesAfterPersist: [] };
    }
    // Some writes take a few ticks, during which acknowledgements arrive.
    const writes = rd.entries.length > 0 || rd.hardState !== undefined || rd.snapshot !== undefined;
    const delay = writes && this.rng.chance(0.3) ? 1 + this.rng.intBelow(3) : 0;
    m.writing = { rd, doneAt: this.now + delay, powerLoss, delayed: delay > 0 };
    if (delay === 0) this.finishReady(m);
  }

  private finishReady(m: SimMember): void {
    const { rd, powerLoss, delayed } = m.writing!;
    m.writing = undefined;
    // A crash before the write completes loses the whole Ready; more often
    // when the write was slow, since others acted on its messages meanwhile.
    if (this.faultsOn && this.rng.chance(delayed ? 0.05 * this.violence : 0.002)) return this.crash(m);
    if (rd.snapshot) m.disk.applySnapshot(rd.snapshot);
    m.disk.append(rd.entries);
    if (rd.hardState) m.disk.setHardState(rd.hardState);
    if (powerLoss) return this.crash(m);
    for (const e of rd.entries) {
      let prevTerm: number | undefined;
      try {
        prevTerm = m.disk.term(e.index - 1);
      } catch {
        prevTerm = undefined;
      }
      this.checker.notePersisted(m.id, e, prevTerm);
    }
    if (this.faultsOn && this.rng.chance(0.0005)) return this.crash(m);
    this.send(rd.messagesAfterPersist);
    if (rd.snapshot) {
      m.kv = KvMachine.restore(rd.snapshot.data);
      m.applied = rd.snapshot.metadata.index;
      this.applyCommitted(m, rd);
    }
    for (const rs of rd.readStates) {
      m.readStates.push({ index: rs.index, ctx: new TextDecoder().decode(rs.requestCtx) });
    }
    m.raw!.advance();
  }

  private applyCommitted(m: SimMember, rd: Ready): void {
    for (const e of rd.committedEntries) {
      if (e.index !== m.applied + 1) this.checker.note(`${m.id} applied ${e.index} right after ${m.applied}`);
      this.checker.noteApplied(m.id, e);
      m.applied = e.index;
      if (e.type === EntryType.ConfChange) {
        m.raw!.applyConfChange(decodeConfChange(e.data));
      } else if (e.data.length > 0) {
        const cmd = decodeCommand(e.data);
        const result = m.kv.apply(cmd);
        if (result && cmd.via === m.id) m.results.set(cmd.opId, { index: e.index, result });
      }
    }
  }

  // ------------------------------------------------------------ clients

  private runClients(): void {
    for (let c = 0; c < this.clients.length; c++) {
      const op = this.clients[c];
      if (op) this.clients[c] = this.progressOp(c, op);
      else if (this.clientsOn && this.rng.chance(0.3)) this.clients[c] = this.startOp(c);
    }
  }

  /** Returns the op if still outstanding. */
  private progressOp(client: number, op: ClientOp): ClientOp | undefined {
    const m = op.via;
    const gone = m.raw === undefined || m.incarnation !== op.incarnation;
    if (!gone && op.op.kind === "read") {
      const at = m.readStates.findIndex((rs) => rs.ctx === op.opId);
      if (at >= 0 && m.readStates[at]!.index <= m.applied) {
        const rs = m.readStates.splice(at, 1)[0]!;
        if (m.applied < op.minIndex) {
          this.checker.note(`stale read: ${m.id} served ${op.opId} at applied ${m.applied} (read index ${rs.index}) before acked write ${op.minIndex}`);
        }
        const value = m.kv.read(op.op.key);
        this.coverage.reads++;
        if (this.readMode === ReadOnlyOption.LeaseBased) this.coverage.leaseReads++;
        this.history.push({ client, call: op.call, ret: this.now, op: op.op, result: { kind: "read", value } });
        return undefined;
      }
    } else if (!gone) {
      const done = m.results.get(op.opId);
      if (done) {
        m.results.delete(op.opId);
        this.history.push({ client, call: op.call, ret: this.now, op: op.op, result: done.result });
        this.ackedWrites.push({ opId: op.opId, index: done.index });
        this.maxAckedIndex = Math.max(this.maxAckedIndex, done.index);
        return undefined;
      }
    }
    if (gone || this.now - op.call > OP_TIMEOUT) {
      // The client never learns the outcome: it may or may not have happened.
      this.history.push({ client, call: op.call, op: op.op });
      return undefined;
    }
    return op;
  }

  /** Starts an operation on a member (usually the leader); undefined if refused at once. */
  startOp(client: number, forced?: KvOp, target?: SimMember): ClientOp | undefined {
    const alive = this.alive();
    if (alive.length === 0) return undefined;
    const leader = this.leader();
    const via = target ?? (leader && this.rng.chance(0.8) ? leader : this.rng.pick(alive));
    const key = this.rng.pick(KEYS);
    const opId = `c${client}-${++this.opSeq}`;
    const roll = this.rng.next();
    const op: KvOp =
      forced ??
      (roll < 0.4
        ? { kind: "write", key, value: `v${this.opSeq}` }
        : roll < 0.8
          ? { kind: "read", key }
          : { kind: "cas", key, expected: this.rng.chance(0.5) ? null : `v${this.rng.intBelow(this.opSeq) + 1}`, value: `v${this.opSeq}` });
    try {
      if (op.kind === "read") via.raw!.readIndex(new TextEncoder().encode(opId));
      else via.raw!.propose(encodeCommand({ opId, via: via.id, op }));
    } catch (err) {
      // Refused synchronously: it never entered the log, so it never happened.
      if (err instanceof RaftError) return undefined;
      throw err;
    }
    return { opId, op, call: this.now, via, incarnation: via.incarnation, minIndex: this.maxAckedIndex };
  }

  // ------------------------------------------------------------ faults

  private injectFaults(): void {
    const ids = [...this.members.keys()];
    const rng = this.rng;
    for (const m of this.members.values()) {
      if (m.raw && rng.chance(0.003) && !this.membership.isRetired(m.id)) {
        this.crash(m);
      } else if (!m.raw && rng.chance(0.03) && !this.membership.isRetired(m.id)) {
        this.start(m);
      }
    }
    const leader = this.leader();
    if (leader && leader.raw!.raft.term > this.lastLeaderTerm) {
      this.lastLeaderTerm = leader.raw!.raft.term;
      if (this.violence > 1 && rng.chance(0.8)) this.strike = { at: this.now + rng.intBelow(3), id: leader.id, crash: rng.chance(0.5) };
    }
    if (this.strike && this.strike.at <= this.now) {
      const target = this.members.get(this.strike.id)!;
      if (this.strike.crash) {
        if (target.raw && !this.membership.isRetired(target.id)) this.crash(target);
      } else {
        this.network.partition([target.id], ids.filter((i) => i !== target.id));
      }
      this.strike = undefined;
    }
    if (leader && rng.chance(0.004 * this.violence) && !this.membership.isRetired(leader.id)) this.crash(leader);
    if (rng.chance(0.006 * this.violence)) {
      const shuffled = [...ids].sort(() => rng.next() - 0.5);
      const cut = 1 + rng.intBelow(ids.length - 1);
      const kind = rng.intBelow(3);
      this.coverage.partitions++;
      if (kind === 0) this.network.partition(shuffled.slice(0, cut), shuffled.slice(cut));
      else if (kind === 1) this.network.cutLink(shuffled[0]!, shuffled[1]!); // asymmetric
      else {
        const leader = this.leader();
        if (leader) this.network.partition([leader.id], ids.filter((i) => i !== leader.id));
      }
    }
    if (this.network.isPartitioned() && rng.chance(0.02 * this.violence)) this.network.healAll();
    if (rng.chance(0.01) && this.alive().length > 0) {
      // A false alarm: a stream broke to a peer that is alive (a reset
      // connection, a slow peer). Often about the reporter's own leader.
      const reporter = rng.pick(this.alive());
      const about = rng.chance(0.5) ? reporter.raw!.raft.lead : rng.pick(ids);
      if (about !== "" && about !== reporter.id) reporter.raw!.reportPeerDown(about);
    }
    for (const m of this.alive()) {
      if (rng.chance(0.01)) this.compact(m);
    }
    if (rng.chance(0.004)) {
      const leader = this.leader();
      if (leader) {
        leader.raw!.transferLeadership(rng.pick(leader.raw!.raft.voters));
        this.coverage.transfers++;
      }
    }
    if (rng.chance(0.003)) this.membership.begin();
  }

  compact(m: SimMember): void {
    // RaftDriver snapshots only between Readies: what it applied is on its disk by then.
    if (m.writing) return;
    const raw = m.raw!;
    // Keep a few entries so followers sometimes catch up by log, sometimes by snapshot.
    const at = m.applied - this.rng.intBelow(3);
    if (at <= m.disk.firstIndex()) return;
    const snapshotIndex = m.disk.snapshot().metadata.index;
    // The conf state must be the one as of `at`: only snapshot at the applied index when it is exact.
    if (at !== m.applied || at <= snapshotIndex) return;
    m.disk.createSnapshot(at, raw.raft.confState(), m.kv.snapshot());
    this.coverage.compactions++;
  }

  // ------------------------------------------------------------ end game

  /** Heals everything and checks that the group makes progress again. */
  private settle(): void {
    this.faultsOn = false;
    this.network.healAll();
    this.network.faults = { dropRate: 0, duplicateRate: 0, maxDelay: 0 };
    for (const m of this.members.values()) if (!m.raw && !this.membership.isRetired(m.id)) this.start(m);
    this.clientsOn = false;
    const healedAt = this.now;
    let probe: ClientOp | undefined;
    while (this.now - healedAt < LIVENESS_BOUND) {
      this.step();
      const leader = this.leader();
      if (!probe && leader && !this.clients.some((c) => c !== undefined)) {
        probe = this.startOp(0, { kind: "write", key: KEYS[0]!, value: "final" }, leader);
        if (probe) this.clients[0] = probe;
      }
      if (probe && this.clients[0] === undefined) {
        const last = this.history[this.history.length - 1];
        if (last?.ret !== undefined) break;
        probe = undefined; // timed out: try again
      }
    }
    if (this.now - healedAt >= LIVENESS_BOUND) {
      this.checker.note(`liveness: no write committed within ${LIVENESS_BOUND} ticks after healing`);
      return;
    }
    // Final reads through the leader, so a lost acknowledged write shows.
    for (const key of KEYS) {
      const leader = this.leader();
      if (!leader) break;
      const op = this.startOp(0, { kind: "read", key }, leader);
      this.clients[0] = op;
      for (let i = 0; i < OP_TIMEOUT + 2 && this.clients[0]; i++) this.step();
    }
    for (let i = 0; i < 100; i++) this.step();
    const leader = this.leader();
    if (!leader) return;
    const voters = leader.raw!.raft.voters;
    for (const id of voters) {
      const m = this.members.get(id)!;
      if (!m.raw) continue;
      if (m.applied < leader.raw!.raft.log.committed) continue;
      for (const w of this.ackedWrites) {
        if (!m.kv.hasApplied(w.opId)) this.checker.note(`lost write: ${id} never applied acknowledged ${w.opId} (index ${w.index})`);
      }
    }
  }

  run(): SimResult {
    const steps = this.options.steps ?? 600;
    try {
      for (let i = 0; i < steps; i++) this.step();
      this.settle();
    } catch (err) {
      this.checker.note(`exception: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    }
    if (this.checker.violations.length === 0) {
      const verdict = checkLinearizable(this.history);
      if (verdict.ok === false) this.checker.note(`not linearizable on key ${verdict.key}: ${verdict.reason}`);
      else if (verdict.ok === "unknown") this.checker.note(`linearizability undecided on key ${verdict.key}: ${verdict.reason}`);
    }
    return {
      seed: this.options.seed,
      steps: this.now,
      violations: this.checker.violations,
      ops: this.history.length,
      acked: this.ackedWrites.length,
      coverage: { ...this.coverage, leaderTerms: this.lastLeaderTerm, memberReplacements: this.membership.completedCycles },
    };
  }
}

export function runSimulation(options: SimOptions): SimResult {
  return new Simulation(options).run();
}

export { ConfChangeType, encodeConfChange };
