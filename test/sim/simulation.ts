/**
 * A whole Raft group in one process, on virtual time, driven by one seed:
 * each member is the real RaftDriver (src/raft-runtime/driver.ts) around
 * the real core, over the twins of its disk and network. Members crash and
 * restart losing what they had not synced, pause (a SIGSTOP: their clock
 * stops, what they were sent waits), run clocks at their own rates; the
 * network drops, delays, duplicates and reorders, holds messages back far
 * beyond the election timeout, partitions (sometimes reporting the lost
 * connections); snapshots and compaction happen as the driver decides,
 * with leadership transfers and member replacement; clients send to
 * whichever member they believe leads. Safety is checked after every event
 * and the client history for linearizability at the end; then the faults
 * stop and the group must make progress within a bound.
 */
import {
  type Entry,
  type NodeId,
  NotLeaderError,
  ReadOnlyOption,
  SeededRandom,
  StateRole,
  type TestingBugs,
  defaultConfig,
} from "../../src/raft/index.js";
import { ETCD_CATCH_UP_ENTRIES, type DriverBugs, spreadSnapshotOffset } from "../../src/raft-runtime/driver.js";
import { MemoryDurableStorage } from "../../src/raft-runtime/memory-durable-storage.js";
import { VirtualScheduler, flushMicrotasks } from "../../src/time/virtual-scheduler.js";
import { type HistoryOp, type KvOp, type KvResult, checkLinearizable } from "../support/linearizability.js";
import { SafetyChecker } from "./invariants.js";
import { encodeCommand } from "./kv-machine.js";
import { MembershipChanger } from "./membership-changer.js";
import { NO_FAULTS, SimNetwork } from "./network.js";
import { SimDisk } from "./sim-disk.js";
import { type MemberSetup, SimMember, TICK_MS } from "./sim-member.js";

export interface SimOptions {
  readonly seed: number;
  readonly members: number;
  /** Ticks (of TICK_MS virtual ms) of the faulty phase. */
  readonly steps?: number;
  readonly bugs?: TestingBugs;
  readonly driverBugs?: DriverBugs;
  /** Shorthand for driverBugs.sendBeforePersist. */
  readonly ackBeforeWrite?: boolean;
  /** Force a read mode; by default a quarter of the seeds use the lease. */
  readonly readMode?: ReadOnlyOption;
  readonly faults?: boolean;
  /**
   * How far members' clock rates stray: "within" the lease's stated bound
   * (the default), or "beyond" it, where lease reads are not promised to
   * be linearizable (README: lease reads).
   */
  readonly clockDrift?: "within" | "beyond";
  /** Told of every event worth a line when a seed is debugged (npm run sim -- --seed S --trace). */
  readonly trace?: (line: string) => void;
}

export interface SimResult {
  readonly seed: number;
  readonly steps: number;
  readonly violations: readonly string[];
  readonly ops: number;
  readonly acked: number;
  /** How much of each kind of event the run saw, so a test can tell the faults really happened. */
  readonly coverage: Readonly<Record<CoverageKey, number>>;
  /** Ticks at which two or more members believed they led. */
  readonly overlapTicks: number;
}

export type CoverageKey =
  | "crashes"
  | "restarts"
  | "partitions"
  | "pauses"
  | "longDelays"
  | "leaderTerms"
  | "compactions"
  | "transfers"
  | "memberReplacements"
  | "reads"
  | "leaseReads"
  | "staleLeaderOps";

const KEYS = ["a", "b", "c"];
const ELECTION_TICK = 10;
const ELECTION_MS = ELECTION_TICK * TICK_MS;
const OP_TIMEOUT_MS = 60 * TICK_MS;
const LIVENESS_BOUND_MS = 400 * TICK_MS;

interface ClientState {
  /** The member it believes leads (it learns from refusals' hints). */
  believed: NodeId;
  busy: boolean;
  /** Chance per tick to start an operation when idle: slow clients call a stale leader long after it was deposed. */
  readonly pace: number;
}

export class Simulation {
  readonly rng: SeededRandom;
  readonly world = new VirtualScheduler(0);
  readonly network: SimNetwork;
  readonly members = new Map<NodeId, SimMember>();
  readonly checker: SafetyChecker;
  readonly history: HistoryOp[] = [];
  private readonly readMode: ReadOnlyOption;
  private readonly smallMessages: boolean;
  private readonly snapshotEvery: number;
  /** Taken from the seed, not drawn: other seeds' schedules stay as they were. */
  private readonly catchUpEntries: number;
  /** A third of the seeds are violent: leaders crash, pause and get cut off often. */
  private readonly violence: number;
  private readonly clients: ClientState[];
  private opSeq = 0;
  private readonly ackedWrites: { opId: string }[] = [];
  readonly membership: MembershipChanger;
  faultsOn: boolean;
  clientsOn = true;
  private overlapTicks = 0;
  private maxTerm = 0;
  readonly coverage: Record<CoverageKey, number> = {
    crashes: 0,
    restarts: 0,
    partitions: 0,
    pauses: 0,
    longDelays: 0,
    leaderTerms: 0,
    compactions: 0,
    transfers: 0,
    memberReplacements: 0,
    reads: 0,
    leaseReads: 0,
    staleLeaderOps: 0,
  };
  private lastLeaderTerm = 0;
  private strike: { at: number; id: NodeId; kind: "crash" | "cut" | "pause" | "stale" } | undefined;

  constructor(readonly options: SimOptions) {
    this.rng = new SeededRandom(options.seed);
    this.network = new SimNetwork(this.world, this.rng.fork());
    this.checker = new SafetyChecker(() => Math.floor(this.world.now() / TICK_MS));
    this.faultsOn = options.faults ?? true;
    this.readMode = options.readMode ?? (this.rng.chance(0.25) ? ReadOnlyOption.LeaseBased : ReadOnlyOption.Safe);
    this.smallMessages = this.rng.chance(0.5);
    this.snapshotEvery = this.rng.chance(0.7) ? 5 + this.rng.intBelow(40) : 1_000_000;
    this.catchUpEntries = [0, 2, 20, ETCD_CATCH_UP_ENTRIES][options.seed % 4]!;
    this.violence = this.rng.chance(0.33) ? 8 : 1;
    const ids = Array.from({ length: options.members }, (_, i) => `n${i + 1}`);
    this.clients = [0.3, 0.3, 0.1, 0.1, 0.03, 0.03].map((pace) => ({ believed: this.rng.pick(ids), busy: false, pace }));
    const drift = options.clockDrift === "beyond" ? 0.4 : 0.05;
    for (const id of ids) {
      const m = this.addMember(id, MemoryDurableStorage.bootstrap(ids));
      if (this.faultsOn) {
        m.rate = 1 - drift + 2 * drift * this.rng.next();
        m.skewMs = this.rng.intBelow(10_000) - 5_000;
      }
      void this.start(m);
    }
    if (this.faultsOn) {
      this.network.faults = {
        dropRate: this.rng.next() * 0.1,
        duplicateRate: this.rng.next() * 0.05,
        maxJitterMs: this.rng.intBelow(4) * TICK_MS,
        longDelayRate: this.rng.next() * 0.01 * this.violence,
        longDelayMs: (2 + this.rng.intBelow(7)) * ELECTION_MS,
      };
    }
    this.membership = new MembershipChanger(this);
  }

  // ------------------------------------------------------------ members

  addMember(id: NodeId, platter: MemoryDurableStorage): SimMember {
    const disk = new SimDisk(id, platter, this.rng.fork(), { persisted: (who, e, prev) => this.checker.notePersisted(who, e, prev) });
    const m = new SimMember(id, disk);
    this.members.set(id, m);
    return m;
  }

  private setup(): MemberSetup {
    return {
      world: this.world,
      network: this.network,
      config: (id) => ({
        ...defaultConfig(id, this.rng.fork()),
        electionTick: ELECTION_TICK,
        heartbeatTick: 1,
        // A third of the seeds heartbeat every 3 ticks when idle (the member
        // derives the same from its election timeout: member.ts); taken from
        // the seed, not its randomness, so other seeds replay as before.
        ...(this.options.seed % 3 === 0 ? { idleHeartbeatTick: 3 } : {}),
        // Some seeds send one entry per append, so acknowledgements cover
        // partial ranges (what the commit rule of §5.4.2 is about).
        maxSizePerMsg: this.smallMessages ? 1 : 4096,
        maxInflightMsgs: this.smallMessages ? 2 : 8,
        maxInflightBytes: 64 * 1024,
        readOnlyOption: this.readMode,
        ...(this.options.bugs ? { bugs: this.options.bugs } : {}),
      }),
      peers: () => new Map([...this.members.keys()].map((id) => [id, `sim:${id}`])),
      snapshotEvery: this.snapshotEvery,
      // Half the seeds spread the members' snapshots as members do (member.ts,
      // snapshotOffset); by the seed number, so other seeds replay as before.
      ...(this.options.seed % 2 === 1
        ? {
            snapshotOffset: (id: NodeId) => spreadSnapshotOffset(this.members.keys(), id, this.snapshotEvery),
          }
        : {}),
      catchUpEntries: this.catchUpEntries,
      requestTimeoutMs: OP_TIMEOUT_MS,
      ...(this.options.driverBugs || this.options.ackBeforeWrite
        ? { driverBugs: { ...this.options.driverBugs, ...(this.options.ackBeforeWrite ? { sendBeforePersist: true } : {}) } }
        : {}),
      onApplied: (id: NodeId, e: Entry) => {
        this.trace(`${id} applies ${e.index} (term ${e.term})`);
        this.checker.noteApplied(id, e);
      },
      onFatal: (id: NodeId, err: unknown) => this.checker.note(`${id} stopped on a broken invariant: ${err instanceof Error ? err.message : String(err)}`),
      onSnapshot: () => this.coverage.compactions++,
    };
  }

  private trace(line: string): void {
    this.options.trace?.(`${String(this.world.now()).padStart(6)} ${line}`);
  }

  start(m: SimMember): Promise<void> {
    this.coverage.restarts++;
    this.trace(`${m.id} starts from disk: last index ${m.disk.platter.lastIndex()}, snapshot ${m.disk.platter.snapshot().metadata.index}`);
    return m.start(this.setup());
  }

  crash(m: SimMember): void {
    if (m.up) this.coverage.crashes++;
    this.trace(`${m.id} crashes (disk: last index ${m.disk.platter.lastIndex()})`);
    m.crash();
    // A crashed process's connections close: most peers' transports notice at once.
    for (const other of this.alive()) {
      if (this.rng.chance(0.8)) this.network.reportDown(other.id, m.id);
    }
  }

  alive(): SimMember[] {
    return [...this.members.values()].filter((m) => m.up);
  }

  /** The member of the highest term that believes it leads (a paused one may too). */
  leader(): SimMember | undefined {
    let best: SimMember | undefined;
    for (const m of this.alive()) {
      const r = m.driver!.core.raft;
      if (r.role === StateRole.Leader && (!best || r.term > best.driver!.core.raft.term)) best = m;
    }
    return best;
  }

  // ------------------------------------------------------------ checks

  /** After every event: election safety, leader completeness, the commit rule, durable commits. */
  private checkAll(): void {
    for (const m of this.members.values()) {
      const core = m.driver?.core;
      if (!core) continue;
      const r = core.raft;
      if (r.term > this.maxTerm) this.maxTerm = r.term;
      if (r.role !== StateRole.Leader) continue;
      if (m.checkedTerm !== r.term) this.trace(`${m.id} leads term ${r.term}: last index ${r.log.lastIndex()}, commit ${r.log.committed}, voters ${r.voters.join(",")}`);
      this.checker.noteLeader(m.id, r.term, core);
      this.checkCommitIsDurable(m);
    }
  }

  /**
   * A leader commits an entry only once a majority of the voters hold it on
   * disk; it can apply (and answer) before its own write is done, so this
   * is what makes an acknowledged write survive any minority of crashes.
   */
  private checkCommitIsDurable(m: SimMember): void {
    const r = m.driver!.core.raft;
    const commit = r.log.committed;
    const voters = r.voters.join(",");
    if (m.checkedTerm !== r.term || m.checkedVoters !== voters) {
      // What it learned to be committed before it led was checked with the
      // leader that committed it; a commit made in the same event as a
      // membership change counted the voters of before the change.
      m.checkedTerm = r.term;
      m.checkedVoters = voters;
      m.checkedCommit = commit;
      return;
    }
    if (commit <= m.checkedCommit) return;
    m.checkedCommit = commit;
    let term: number | undefined;
    try {
      term = r.log.term(commit);
    } catch {
      return; // compacted: checked when it was committed
    }
    const holders = r.voters.filter((id) => {
      const disk = this.members.get(id)?.disk.platter;
      if (!disk || disk.lastIndex() < commit) return false;
      if (disk.snapshot().metadata.index >= commit) return true;
      try {
        return disk.term(commit) === term;
      } catch {
        return false;
      }
    });
    if (holders.length * 2 <= r.voters.length) {
      const matches = r.voters.map((id) => `${id} match ${r.prs.get(id)?.match} disk ${this.members.get(id)?.disk.platter.lastIndex()}`).join("; ");
      this.checker.note(`${m.id} committed ${commit} (term ${term}) held on disk by only ${holders.join(", ") || "none"} of ${r.voters.join(", ")} (${matches})`);
    }
  }

  // ------------------------------------------------------------ the loop

  /** Runs virtual time up to `untilMs`, checking after every event; stops at the first violation. */
  private async runUntil(untilMs: number): Promise<void> {
    await flushMicrotasks();
    while (this.checker.violations.length === 0 && this.world.runNext(untilMs)) {
      await flushMicrotasks();
      this.checkAll();
    }
    if (this.checker.violations.length > 0) throw new StopAtViolation();
    await this.world.advanceTo(untilMs);
  }

  /** One tick of the world: clients, faults, membership, and the count of believed leaders. */
  private tick(): void {
    const leaders = this.alive().filter((m) => m.role === StateRole.Leader).length;
    if (leaders >= 2) this.overlapTicks++;
    this.runClients();
    if (this.faultsOn) this.injectFaults();
    this.membership.step();
  }

  // ------------------------------------------------------------ clients

  private runClients(): void {
    if (!this.clientsOn) return;
    this.clients.forEach((c, i) => {
      if (!c.busy && this.rng.chance(c.pace)) void this.runOp(i, c);
    });
  }

  /** Sends one operation to the member the client believes leads; records the outcome in the history. */
  async runOp(client: number, c: ClientState, forced?: KvOp, target?: SimMember): Promise<boolean> {
    const via = target ?? this.pickMember(c);
    if (!via?.driver) return false;
    const opId = `c${client}-${++this.opSeq}`;
    const key = this.rng.pick(KEYS);
    const roll = this.rng.next();
    const op: KvOp =
      forced ??
      (roll < 0.4
        ? { kind: "write", key, value: `v${this.opSeq}` }
        : roll < 0.8
          ? { kind: "read", key }
          : { kind: "cas", key, expected: this.rng.chance(0.5) ? null : `v${this.rng.intBelow(this.opSeq) + 1}`, value: `v${this.opSeq}` });
    const driver = via.driver;
    const machine = via.machine!;
    if (driver.core.raft.role === StateRole.Leader && this.leader() !== via) this.coverage.staleLeaderOps++;
    c.busy = true;
    const call = this.world.now();
    const pending: Promise<KvResult | undefined> =
      op.kind === "read"
        ? driver.read(() => ({ kind: "read" as const, value: machine.kv.read(op.key) }))
        : (driver.propose(encodeCommand({ opId, via: via.id, op })) as Promise<KvResult | undefined>);
    let timer: ReturnType<VirtualScheduler["setTimeout"]> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = this.world.setTimeout(() => resolve("timeout"), OP_TIMEOUT_MS);
    });
    let acked = false;
    try {
      const outcome = await Promise.race([pending, timeout]);
      if (outcome === "timeout" || outcome === undefined) {
        // The client never learns the outcome: it may or may not have happened.
        this.history.push({ client, call, op });
      } else {
        this.history.push({ client, call, ret: this.world.now(), op, result: outcome });
        if (op.kind === "read") {
          this.coverage.reads++;
          if (this.readMode === ReadOnlyOption.LeaseBased) this.coverage.leaseReads++;
        } else {
          this.ackedWrites.push({ opId });
        }
        acked = true;
      }
    } catch (err) {
      if (err instanceof NotLeaderError) {
        // Refused before it entered the log: it never happened. Follow the hint.
        if (err.leaderId !== "") c.believed = err.leaderId;
        else c.believed = this.rng.pick([...this.members.keys()]);
      } else {
        this.history.push({ client, call, op });
        c.believed = this.rng.pick([...this.members.keys()]);
      }
    } finally {
      this.world.clearTimeout(timer);
      c.busy = false;
    }
    return acked;
  }

  private pickMember(c: ClientState): SimMember | undefined {
    const believed = this.members.get(c.believed);
    if (believed?.up && !this.rng.chance(0.05)) return believed;
    const alive = this.alive();
    if (alive.length === 0) return undefined;
    const m = this.rng.pick(alive);
    c.believed = m.id;
    return m;
  }

  // ------------------------------------------------------------ faults

  private injectFaults(): void {
    const ids = [...this.members.keys()];
    const rng = this.rng;
    for (const m of this.members.values()) {
      if (this.membership.isRetired(m.id)) continue;
      if (m.up && rng.chance(0.003)) this.crash(m);
      else if (!m.up && rng.chance(0.03)) void this.start(m);
      else if (m.up && rng.chance(0.002 * this.violence)) this.pause(m);
    }
    const leader = this.leader();
    if (leader && leader.driver!.core.raft.term > this.lastLeaderTerm) {
      this.lastLeaderTerm = leader.driver!.core.raft.term;
      if (this.violence > 1 && rng.chance(0.8)) {
        this.strike = { at: this.world.now() + rng.intBelow(3) * TICK_MS, id: leader.id, kind: rng.pick(["crash", "cut", "pause", "stale"] as const) };
      }
    }
    if (this.strike && this.strike.at <= this.world.now()) {
      const target = this.members.get(this.strike.id)!;
      if (!this.membership.isRetired(target.id)) {
        if (this.strike.kind === "crash") this.crash(target);
        else if (this.strike.kind === "pause") this.pause(target);
        else if (this.strike.kind === "cut") this.network.partition([target.id], ids.filter((i) => i !== target.id), 0.5);
        else {
          // A stale leader: cut off without noticing and stopped, so it wakes up
          // still leading while the others elected another; clients still reach it.
          this.network.partition([target.id], ids.filter((i) => i !== target.id), 0);
          this.pause(target);
        }
      }
      this.strike = undefined;
    }
    if (leader && rng.chance(0.004 * this.violence) && !this.membership.isRetired(leader.id)) {
      if (rng.chance(0.5)) this.crash(leader);
      else this.pause(leader);
    }
    if (rng.chance(0.006 * this.violence)) {
      const shuffled = [...ids].sort(() => rng.next() - 0.5);
      const cut = 1 + rng.intBelow(ids.length - 1);
      const kind = rng.intBelow(3);
      this.coverage.partitions++;
      const report = rng.chance(0.5) ? 0.7 : 0;
      this.trace(`partition kind ${kind}`);
      if (kind === 0) this.network.partition(shuffled.slice(0, cut), shuffled.slice(cut), report);
      else if (kind === 1) this.network.cutLink(shuffled[0]!, shuffled[1]!, report > 0); // asymmetric
      else if (leader) this.network.partition([leader.id], ids.filter((i) => i !== leader.id), report);
    }
    if (this.network.isPartitioned() && rng.chance(0.02 * this.violence)) this.network.healAll();
    if (rng.chance(0.01) && this.alive().length > 0) {
      // A false alarm: a stream broke to a peer that is alive. Often about the reporter's own leader.
      const reporter = rng.pick(this.alive());
      const about = rng.chance(0.5) ? reporter.driver!.core.raft.lead : rng.pick(ids);
      if (about !== "" && about !== reporter.id) this.network.reportDown(reporter.id, about);
    }
    const current = this.leader();
    if (rng.chance(0.004) && current) {
      void current.driver!.transferLeadership(rng.pick(current.driver!.core.raft.voters), 5 * ELECTION_MS).catch(() => undefined);
      this.coverage.transfers++;
    }
    if (rng.chance(0.003)) this.membership.begin();
  }

  /** SIGSTOP for half an election timeout to several: long enough that others elect a new leader. */
  private pause(m: SimMember): void {
    if (!m.up || m.pausedUntil > 0) return;
    this.coverage.pauses++;
    this.trace(`${m.id} pauses`);
    m.pause(this.world, Math.floor((0.5 + this.rng.next() * 5) * ELECTION_MS));
  }

  // ------------------------------------------------------------ end game

  /** Heals everything and checks that the group makes progress again. */
  private async settle(): Promise<void> {
    this.faultsOn = false;
    this.clientsOn = false;
    this.network.healAll();
    this.network.faults = NO_FAULTS;
    for (const m of this.members.values()) {
      if (this.membership.isRetired(m.id)) continue;
      if (!m.up) void this.start(m);
      else m.resume();
    }
    // Messages held back far beyond the election timeout come in meanwhile; in-flight ops finish.
    const healedAt = this.world.now();
    const probe: ClientState = { believed: "", busy: false, pace: 0 };
    let committed = false;
    while (!committed && this.world.now() - healedAt < LIVENESS_BOUND_MS) {
      await this.runUntil(this.world.now() + 5 * TICK_MS);
      const leader = this.leader();
      if (leader) committed = await this.runOpWhileTime(probe, { kind: "write", key: KEYS[0]!, value: "final" }, leader);
    }
    if (!committed) {
      this.checker.note(`liveness: no write committed within ${LIVENESS_BOUND_MS} ms after healing`);
      return;
    }
    // Final reads through the leader, so a lost acknowledged write shows.
    for (const key of KEYS) {
      const leader = this.leader();
      if (!leader) break;
      await this.runOpWhileTime(probe, { kind: "read", key }, leader);
    }
    await this.runUntil(this.world.now() + 100 * TICK_MS);
    const leader = this.leader();
    if (!leader) return;
    const core = leader.driver!.core;
    for (const id of core.raft.voters) {
      const m = this.members.get(id);
      if (!m?.driver || !m.machine) continue;
      if (m.driver.core.raft.log.applied < core.raft.log.committed) continue;
      for (const w of this.ackedWrites) {
        if (!m.machine.kv.hasApplied(w.opId)) this.checker.note(`lost write: ${id} never applied acknowledged ${w.opId}`);
      }
    }
  }

  /** Runs one op to completion while virtual time advances. */
  private async runOpWhileTime(c: ClientState, op: KvOp, target: SimMember): Promise<boolean> {
    let done = false;
    let acked = false;
    void this.runOp(0, c, op, target).then((ok) => {
      acked = ok;
      done = true;
    });
    const until = this.world.now() + OP_TIMEOUT_MS + TICK_MS;
    while (!done && this.world.now() < until) await this.runUntil(this.world.now() + TICK_MS);
    return acked;
  }

  async run(): Promise<SimResult> {
    const steps = this.options.steps ?? 600;
    const ticker = this.world.setInterval(() => this.tick(), TICK_MS);
    try {
      await this.runUntil(steps * TICK_MS);
      this.world.clearInterval(ticker);
      await this.settle();
    } catch (err) {
      if (!(err instanceof StopAtViolation)) this.checker.note(`exception: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    } finally {
      this.world.clearInterval(ticker);
      for (const m of this.members.values()) m.crash();
    }
    if (this.checker.violations.length === 0) {
      const verdict = checkLinearizable(this.history);
      if (verdict.ok === false) this.checker.note(`not linearizable on key ${verdict.key}: ${verdict.reason}`);
      else if (verdict.ok === "unknown") this.checker.note(`linearizability undecided on key ${verdict.key}: ${verdict.reason}`);
    }
    return {
      seed: this.options.seed,
      steps: Math.floor(this.world.now() / TICK_MS),
      violations: this.checker.violations,
      ops: this.history.length,
      acked: this.ackedWrites.length,
      coverage: { ...this.coverage, leaderTerms: this.maxTerm, memberReplacements: this.membership.completedCycles, longDelays: this.network.longDelayed },
      overlapTicks: this.overlapTicks,
    };
  }
}

/** Ends a run at its first violation: what follows a broken invariant proves nothing more. */
class StopAtViolation extends Error {}

export function runSimulation(options: SimOptions): Promise<SimResult> {
  return new Simulation(options).run();
}
