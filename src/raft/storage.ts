/**
 * The storage the core reads from: what the driver has already persisted.
 * The core never writes to it; the driver persists each Ready, then calls
 * `advance()`. `MemoryStorage` is the in-memory twin used by the simulation
 * and by tests; the LevelDB store implements the same interface.
 */
import { CompactedError, UnavailableError } from "./errors.js";
import type { ConfState, Entry, HardState, Snapshot } from "./types.js";
import { encodeConfChange } from "./conf-change.js";
import { ConfChangeType, EntryType, emptyHardState, entryBytes } from "./types.js";

export interface InitialState {
  readonly hardState: HardState;
  readonly confState: ConfState;
}

export interface Storage {
  /** The persisted hard state and membership, read once at start. */
  initialState(): InitialState;
  /**
   * Entries in [lo, hi), at least one if any exist in the range, and at
   * most `maxBytes` beyond the first. Throws CompactedError when lo is before
   * firstIndex(), UnavailableError when hi - 1 is past lastIndex().
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** Term of entry i, for firstIndex()-1 ≤ i ≤ lastIndex(). */
  term(i: number): number;
  /**
   * Index of the first entry still in the log: at most the snapshot index
   * + 1. A log compacted with catch-up entries keeps some entries the
   * snapshot already covers, so a follower a little behind the snapshot is
   * sent entries rather than the whole state.
   */
  firstIndex(): number;
  lastIndex(): number;
  /** The most recent snapshot. */
  snapshot(): Snapshot;
}

export const emptySnapshot: Snapshot = {
  metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } },
  data: new Uint8Array(0),
};

/** An entry's position: the log start (the entry before the first kept one) is known by it alone. */
export interface LogPosition {
  readonly index: number;
  readonly term: number;
}

/** A store's whole contents, as written to and read back from a disk. */
export interface StoredLog {
  readonly hardState: HardState;
  readonly snapshot: Snapshot;
  readonly logStart: LogPosition;
  readonly entries: readonly Entry[];
}

export class MemoryStorage implements Storage {
  private hardState: HardState = emptyHardState;
  private snap: Snapshot = emptySnapshot;
  /**
   * The entry just before the first one kept: the snapshot's, or an older
   * one when compaction kept catch-up entries. Never after the snapshot.
   */
  private start: LogPosition = { index: 0, term: 0 };
  // ents[i] has index start.index + 1 + i.
  private ents: Entry[] = [];

  /**
   * A fresh store for a founding member of a new group: the initial voters
   * are the first committed entries of the log (as etcd bootstraps), so a
   * member that later replays the log from index 1 learns them too. Every
   * founding member must be bootstrapped with the same list.
   */
  static bootstrap(voters: readonly string[]): MemoryStorage {
    const s = new MemoryStorage();
    s.ents = voters.map((nodeId, i) => ({
      term: 1,
      index: i + 1,
      type: EntryType.ConfChange,
      data: encodeConfChange({ type: ConfChangeType.AddVoter, nodeId }),
    }));
    s.hardState = { term: 1, vote: "", commit: voters.length };
    return s;
  }

  initialState(): InitialState {
    return { hardState: this.hardState, confState: this.snap.metadata.confState };
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.start.index + 1;
    if (lo < offset) throw new CompactedError(`entries from ${lo}: compacted up to ${offset - 1}`);
    if (hi > this.lastIndex() + 1) {
      throw new UnavailableError(`entries up to ${hi - 1}: last index is ${this.lastIndex()}`);
    }
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.ents[i - offset]!;
      bytes += entryBytes(e);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  term(i: number): number {
    const start = this.start.index;
    if (i === start) return this.start.term;
    if (i < start) throw new CompactedError(`term of ${i}: compacted up to ${start}`);
    const e = this.ents[i - start - 1];
    if (e === undefined) throw new UnavailableError(`term of ${i}: last index is ${this.lastIndex()}`);
    return e.term;
  }

  firstIndex(): number {
    return this.start.index + 1;
  }

  lastIndex(): number {
    return this.start.index + this.ents.length;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  // ---- writes, called by the driver only ----

  setHardState(hs: HardState): void {
    this.hardState = hs;
  }

  /** Appends entries, replacing any existing suffix they conflict with. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    const offset = this.start.index + 1;
    if (first > this.lastIndex() + 1) {
      throw new Error(`invariant: append at ${first} leaves a gap after ${this.lastIndex()}`);
    }
    // Entries at or before the log start are already covered by the snapshot.
    const skip = Math.max(0, offset - first);
    if (skip >= entries.length) return;
    this.ents.length = first + skip - offset;
    for (let i = skip; i < entries.length; i++) this.ents.push(entries[i]!);
  }

  /** Replaces the whole log by a snapshot received from the leader. */
  applySnapshot(snap: Snapshot): void {
    if (snap.metadata.index <= this.snap.metadata.index) return;
    // The log restarts after the snapshot: the core only sends a snapshot
    // to a member whose log cannot be continued by appends.
    this.snap = snap;
    this.start = { index: snap.metadata.index, term: snap.metadata.term };
    this.ents = [];
  }

  /**
   * Records a snapshot of the state machine at `index` (≤ applied) and
   * compacts the log up to it, in one step, so no range is ever dropped
   * that a snapshot does not cover. `firstKept` (at most index + 1, the
   * default) keeps the entries from there on as catch-up entries.
   */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array, firstKept = index + 1): Snapshot {
    const snapIndex = this.snap.metadata.index;
    if (index <= snapIndex) return this.snap;
    if (index > this.lastIndex()) throw new Error(`invariant: snapshot at ${index} past last index ${this.lastIndex()}`);
    if (firstKept > index + 1) throw new Error(`invariant: catch-up entries from ${firstKept} leave a gap after the snapshot at ${index}`);
    this.snap = { metadata: { index, term: this.term(index), confState }, data };
    const start = Math.max(this.start.index, firstKept - 1);
    const startTerm = this.term(start);
    this.ents = this.ents.slice(start - this.start.index);
    this.start = { index: start, term: startTerm };
    return this.snap;
  }

  /**
   * Replaces the whole store by what a restart reads back from disk: the
   * entries must follow `logStart` one by one, and `logStart` must not be
   * after the snapshot (the caller checked the disk's state).
   */
  load(stored: StoredLog): void {
    const { snapshot, logStart, entries } = stored;
    if (logStart.index > snapshot.metadata.index) {
      throw new Error(`invariant: log start ${logStart.index} is after the snapshot at ${snapshot.metadata.index}`);
    }
    entries.forEach((e, i) => {
      if (e.index !== logStart.index + 1 + i) throw new Error(`invariant: stored entry ${e.index} does not follow the log start ${logStart.index} in order`);
    });
    this.hardState = stored.hardState;
    this.snap = snapshot;
    this.start = logStart;
    this.ents = entries.slice();
  }

  /** Everything this store holds, as `load` takes it. */
  stored(): StoredLog {
    return { hardState: this.hardState, snapshot: this.snap, logStart: this.start, entries: this.ents.slice() };
  }

  /** A deep-enough copy: what survives a crash of the member that owns it. */
  clone(): MemoryStorage {
    const s = new MemoryStorage();
    s.load(this.stored());
    return s;
  }
}
