/**
 * A tiny deterministic harness for hand-written Raft scenarios: a few
 * members, each with its own MemoryStorage ("disk"), a FIFO network with
 * links that can be cut, a filter hook, and a driver that carries out each
 * Ready exactly in the documented order (send `messages`, persist snapshot +
 * entries + hard state, send `messagesAfterPersist`, apply, `advance()`).
 *
 * Time moves only when a test ticks; messages move only when a test calls
 * `deliver()` / `stabilize()` (or `tick()`, which stabilizes after each
 * tick). All randomness comes from one seed, so every run is identical.
 *
 * The state machine is a list of strings: every non-empty Normal entry is
 * one UTF-8 string; a snapshot holds that list as JSON.
 */
import {
  ConfChangeType,
  EntryType,
  type Entry,
  MemoryStorage,
  type Message,
  MessageType,
  type NodeId,
  type ProposalPosition,
  type RaftConfig,
  RawNode,
  type ReadState,
  type Ready,
  SeededRandom,
  StateRole,
  decodeConfChange,
  defaultConfig,
  encodeConfChange,
} from "../../src/raft/index.js";
import type { Raft } from "../../src/raft/raft.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export const enc = (text: string): Uint8Array => encoder.encode(text);
export const dec = (bytes: Uint8Array): string => decoder.decode(bytes);

export const ELECTION_TICK = 10;
export const HEARTBEAT_TICK = 1;

export type ConfigOverrides = Partial<Omit<RaftConfig, "id" | "random" | "applied">>;

export interface HarnessOptions {
  /** Seed of every member's election-timeout randomness. */
  readonly seed?: number;
  /** Config overrides for every member, or per member. */
  readonly config?: ConfigOverrides | ((id: NodeId) => ConfigOverrides);
  /**
   * Extra entries after the bootstrap entries, given by term, per member
   * (the logs of the paper's figures 7 and 8). The member's hard state gets
   * the last term, no vote, and commit at the end of the bootstrap entries.
   */
  readonly logs?: Readonly<Record<NodeId, readonly number[]>>;
  /**
   * Tell the sender when a Snap message could not be delivered (link cut,
   * dropped, receiver down), as a transport would. Default true.
   */
  readonly reportSnapshotFailures?: boolean;
}

export interface Member {
  readonly id: NodeId;
  /** What survives a crash. */
  readonly storage: MemoryStorage;
  /** Undefined while crashed. */
  raw: RawNode | undefined;
  /** Entries applied by this incarnation, in order (a snapshot restore is not listed). */
  applied: Entry[];
  appliedIndex: number;
  /** The state machine: the non-empty Normal entries applied, as text. */
  data: string[];
  /** Read states handed out by this incarnation, in order. */
  readStates: ReadState[];
  /** Snapshots this incarnation installed. */
  snapshotsInstalled: number;
  /** Readies carried out by this incarnation. */
  readies: number;
}

/** A message that reached a member and was refused by RawNode.step. */
export interface Refusal {
  readonly message: Message;
  readonly error: Error;
}

/** Returns true to drop the message. */
export type DropFilter = (m: Message) => boolean;

export class Harness {
  readonly rng: SeededRandom;
  readonly members = new Map<NodeId, Member>();
  /** Messages sent but not yet delivered, in order. */
  queue: Message[] = [];
  /** Every message handed to the network, in order (including dropped ones). */
  readonly sent: Message[] = [];
  /** Every message stepped into a member, in order. */
  readonly delivered: Message[] = [];
  /** Messages that RawNode.step refused (InvalidMessageError). */
  readonly refusals: Refusal[] = [];
  /** Called with every Ready, before it is carried out. */
  onReady: ((id: NodeId, rd: Ready) => void) | undefined;
  private readonly filters: DropFilter[] = [];
  private readonly cuts = new Set<string>();
  private readonly reportSnapshotFailures: boolean;

  constructor(
    readonly voters: readonly NodeId[],
    readonly options: HarnessOptions = {},
  ) {
    this.rng = new SeededRandom(options.seed ?? 1);
    this.reportSnapshotFailures = options.reportSnapshotFailures ?? true;
    for (const id of voters) {
      const storage = MemoryStorage.bootstrap(voters);
      const extra = options.logs?.[id];
      if (extra && extra.length > 0) {
        let index = voters.length;
        storage.append(extra.map((term) => ({ term, index: ++index, type: EntryType.Normal, data: enc(`${id}@${index}t${term}`) })));
        storage.setHardState({ term: Math.max(1, ...extra), vote: "", commit: voters.length });
      }
      this.addMemberWithStorage(id, storage);
    }
    // Apply the bootstrap conf changes (the founding members' first Ready).
    this.stabilize();
  }

  // ------------------------------------------------------------ members

  /** A brand new member with an empty disk (it joins through a conf change). */
  addMember(id: NodeId): Member {
    return this.addMemberWithStorage(id, new MemoryStorage());
  }

  private addMemberWithStorage(id: NodeId, storage: MemoryStorage): Member {
    if (this.members.has(id)) throw new Error(`member ${id} already exists`);
    const m: Member = { id, storage, raw: undefined, applied: [], appliedIndex: 0, data: [], readStates: [], snapshotsInstalled: 0, readies: 0 };
    this.members.set(id, m);
    this.start(m);
    return m;
  }

  configFor(id: NodeId, applied: number): RaftConfig {
    const o = this.options.config;
    const overrides = typeof o === "function" ? o(id) : (o ?? {});
    return {
      ...defaultConfig(id, this.rng.fork()),
      electionTick: ELECTION_TICK,
      heartbeatTick: HEARTBEAT_TICK,
      ...overrides,
      applied,
    };
  }

  private start(m: Member): void {
    const snap = m.storage.snapshot();
    m.data = snap.metadata.index > 0 ? (JSON.parse(dec(snap.data)) as string[]) : [];
    m.appliedIndex = snap.metadata.index;
    m.applied = [];
    m.readStates = [];
    m.snapshotsInstalled = 0;
    m.readies = 0;
    m.raw = new RawNode(this.configFor(m.id, snap.metadata.index), m.storage);
  }

  member(id: NodeId): Member {
    const m = this.members.get(id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  raw(id: NodeId): RawNode {
    const raw = this.member(id).raw;
    if (!raw) throw new Error(`member ${id} is down`);
    return raw;
  }

  raft(id: NodeId): Raft {
    return this.raw(id).raft;
  }

  alive(): Member[] {
    return [...this.members.values()].filter((m) => m.raw !== undefined);
  }

  /** Loses everything not on disk. Messages already in flight from it still arrive. */
  crash(id: NodeId): void {
    this.member(id).raw = undefined;
  }

  /** Restarts from what was persisted. */
  restart(id: NodeId): RawNode {
    const m = this.member(id);
    if (m.raw) throw new Error(`member ${id} is running`);
    this.start(m);
    return m.raw!;
  }

  /** The live leader of the highest term, if any. */
  leader(): NodeId | undefined {
    let best: Member | undefined;
    for (const m of this.alive()) {
      const r = m.raw!.raft;
      if (r.role === StateRole.Leader && (!best || r.term > best.raw!.raft.term)) best = m;
    }
    return best?.id;
  }

  /** Texts of the non-empty Normal entries this member's state machine holds. */
  appliedTexts(id: NodeId): string[] {
    return [...this.member(id).data];
  }

  /** The member's whole log (stable + unstable) from its first index. */
  logOf(id: NodeId): Entry[] {
    const log = this.raft(id).log;
    return log.slice(log.firstIndex(), log.lastIndex() + 1, Infinity);
  }

  /** The term of each entry of the member's log from its first index, for compact assertions. */
  termsOf(id: NodeId): number[] {
    return this.logOf(id).map((e) => e.term);
  }

  // ------------------------------------------------------------ inputs

  /** Ticks the member (or every live member) n times, stabilizing after each tick. */
  tick(id?: NodeId, n = 1): void {
    for (let i = 0; i < n; i++) {
      if (id !== undefined) this.raw(id).tick();
      else for (const m of this.alive()) m.raw!.tick();
      this.stabilize();
    }
  }

  /** Ticks until `done()` holds (stabilizing after each tick); returns the ticks taken. */
  tickUntil(done: () => boolean, max: number, id?: NodeId): number {
    for (let i = 1; i <= max; i++) {
      this.tick(id);
      if (done()) return i;
    }
    throw new Error(`condition not reached within ${max} ticks`);
  }

  /** Starts an election on `id` now (as if its timer fired); does not deliver. */
  campaign(id: NodeId): void {
    this.raw(id).campaign();
  }

  /** Campaigns and stabilizes; throws unless `id` ends up the leader. */
  elect(id: NodeId): Raft {
    this.campaign(id);
    this.stabilize();
    const r = this.raft(id);
    if (r.role !== StateRole.Leader) throw new Error(`${id} did not win: ${r.role} at term ${r.term}`);
    return r;
  }

  propose(id: NodeId, ...texts: string[]): ProposalPosition | undefined {
    return this.raw(id).propose(...texts.map(enc));
  }

  proposeConfChange(id: NodeId, type: ConfChangeType, nodeId: NodeId): ProposalPosition | undefined {
    return this.raw(id).proposeConfChange(encodeConfChange({ type, nodeId }));
  }

  /**
   * Compacts the member's disk at `index` (default: its applied index) with
   * a snapshot of its state machine, keeping `catchUpEntries` entries
   * behind it (this harness's disk keeps them across a restart).
   */
  compact(id: NodeId, index?: number, catchUpEntries = 0): void {
    const m = this.member(id);
    const at = index ?? m.appliedIndex;
    if (at !== m.appliedIndex) throw new Error(`compact only at the applied index ${m.appliedIndex}`);
    m.storage.createSnapshot(at, this.raft(id).confState(), enc(JSON.stringify(m.data)), at + 1 - catchUpEntries);
  }

  // ------------------------------------------------------------ network

  /** Drops every message for which `f` returns true; returns a remover. */
  dropWhen(f: DropFilter): () => void {
    this.filters.push(f);
    return () => {
      const at = this.filters.indexOf(f);
      if (at >= 0) this.filters.splice(at, 1);
    };
  }

  clearFilters(): void {
    this.filters.length = 0;
  }

  /** Cuts the link from → to (one way). */
  cut(from: NodeId, to: NodeId): void {
    this.cuts.add(`${from}>${to}`);
  }

  /** Cuts every link to and from `id`. */
  isolate(id: NodeId): void {
    for (const other of this.members.keys()) {
      if (other === id) continue;
      this.cut(id, other);
      this.cut(other, id);
    }
  }

  /** Cuts every link between different groups. */
  partition(...groups: readonly NodeId[][]): void {
    for (const a of groups) for (const b of groups) {
      if (a === b) continue;
      for (const x of a) for (const y of b) this.cut(x, y);
    }
  }

  /** Restores every link (filters stay). */
  heal(): void {
    this.cuts.clear();
  }

  connected(from: NodeId, to: NodeId): boolean {
    return !this.cuts.has(`${from}>${to}`);
  }

  /** Sends like a transport: queued, delivered later. */
  send(msgs: readonly Message[]): void {
    for (const m of msgs) {
      this.sent.push(m);
      this.queue.push(m);
    }
  }

  /** Steps one message into its recipient now (bypassing the queue and the filters). */
  inject(m: Message): Error | undefined {
    const to = this.member(m.to).raw;
    if (!to) return undefined;
    this.delivered.push(m);
    const err = to.step(m);
    if (err) this.refusals.push({ message: m, error: err });
    return err;
  }

  /** Delivers every message queued now (in order); returns how many arrived. */
  deliver(): number {
    this.processReadies();
    const batch = this.queue;
    this.queue = [];
    let arrived = 0;
    for (const m of batch) {
      const to = this.members.get(m.to);
      const dropped = !to?.raw || !this.connected(m.from, m.to) || this.filters.some((f) => f(m));
      if (dropped) {
        if (m.type === MessageType.Snap && this.reportSnapshotFailures) this.members.get(m.from)?.raw?.reportSnapshot(m.to, false);
        continue;
      }
      arrived++;
      this.delivered.push(m);
      const err = to.raw!.step(m);
      if (err) this.refusals.push({ message: m, error: err });
    }
    this.processReadies();
    return arrived;
  }

  /** Carries out Readies and delivers messages until nothing moves. */
  stabilize(maxRounds = 1000): void {
    for (let round = 0; round < maxRounds; round++) {
      this.processReadies();
      if (this.queue.length === 0) return;
      this.deliver();
    }
    throw new Error(`not quiet after ${maxRounds} rounds`);
  }

  // ------------------------------------------------------------ the driver

  processReadies(): void {
    for (let round = 0; round < 100; round++) {
      let any = false;
      for (const m of this.alive()) {
        if (!m.raw!.hasReady()) continue;
        any = true;
        this.carryOut(m.id, m.raw!.ready());
      }
      if (!any) return;
    }
    throw new Error("readies did not settle");
  }

  /** Carries out a Ready taken from `id` (in the documented order), then advances. */
  carryOut(id: NodeId, rd: Ready): void {
    const m = this.member(id);
    const raw = m.raw!;
    this.onReady?.(id, rd);
    m.readies++;
    this.send(rd.messages);
    if (rd.snapshot) m.storage.applySnapshot(rd.snapshot);
    m.storage.append(rd.entries);
    if (rd.hardState) m.storage.setHardState(rd.hardState);
    this.send(rd.messagesAfterPersist);
    if (rd.snapshot) {
      m.data = JSON.parse(dec(rd.snapshot.data)) as string[];
      m.appliedIndex = rd.snapshot.metadata.index;
      m.snapshotsInstalled++;
    }
    for (const e of rd.committedEntries) {
      if (e.index !== m.appliedIndex + 1) throw new Error(`${id} applied ${e.index} right after ${m.appliedIndex}`);
      m.applied.push(e);
      m.appliedIndex = e.index;
      if (e.type === EntryType.ConfChange) raw.applyConfChange(decodeConfChange(e.data));
      else if (e.data.length > 0) m.data.push(dec(e.data));
    }
    m.readStates.push(...rd.readStates);
    raw.advance();
  }

  // ------------------------------------------------------------ inspection

  /** Messages sent so far that match. */
  sentWhere(f: (m: Message) => boolean): Message[] {
    return this.sent.filter(f);
  }
}

export { ConfChangeType, MessageType, StateRole };
