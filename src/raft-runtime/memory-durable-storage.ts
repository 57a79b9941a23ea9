/**
 * The in-memory twin of LevelStorage, and the rules both twins share: what a
 * persist or a compaction may be, and exactly which log indexes each one
 * stores and removes (a StorageChange). LevelStorage keeps a
 * MemoryDurableStorage as its read copy and gives it a writer that puts each
 * planned change on disk before the copy applies it, so the two stores can
 * only differ in where the bytes live.
 *
 * A change is planned against the state it will be applied to and refused
 * (before anything is written) when it would leave a state that the startup
 * checks of LevelStorage reject: a member must never be able to write
 * itself into a state it cannot restart from.
 */
import type { DurableStorage, PersistBatch } from "./durable-storage.js";
import { ConfigError } from "../raft/errors.js";
import { MemoryStorage, type Storage, type StoredLog } from "../raft/storage.js";
import type { ConfState, Entry, HardState, NodeId, Snapshot } from "../raft/types.js";

/** An inclusive range of log indexes. */
export interface IndexRange {
  readonly from: number;
  readonly to: number;
}

/** One atomic change of a member's disk, planned against its current state. */
export interface StorageChange {
  /** How the read copy applies it (the disk does not care). */
  readonly kind: "persist" | "compaction";
  /** A snapshot that takes effect: newer than the stored one. */
  readonly snapshot?: Snapshot;
  /** Entries to store, each replacing any stored entry at its index. */
  readonly entries: readonly Entry[];
  readonly hardState?: HardState;
  /**
   * Stored entries that leave the disk: covered by the new snapshot (the
   * disk keeps no catch-up entries, see `whatTheDiskKeeps`), or a suffix
   * replaced by conflicting entries. Disjoint from `entries`; it may name
   * indexes the disk no longer holds.
   */
  readonly removed: readonly IndexRange[];
  /** The log in memory after the change (catch-up entries included). */
  readonly firstIndex: number;
  readonly lastIndex: number;
}

/** Puts a planned change on disk as one atomic write; resolves once durable. */
export type ChangeWriter = (change: StorageChange) => Promise<void>;

/** The batch that makes an empty store a founding member (see MemoryStorage.bootstrap). */
export function bootstrapBatch(voters: readonly NodeId[]): PersistBatch {
  if (voters.length === 0) throw new ConfigError("bootstrap voters must name at least one member");
  if (new Set(voters).size !== voters.length) {
    throw new ConfigError(`bootstrap voters must be distinct, got ${voters.join(", ")}`);
  }
  const founding = MemoryStorage.bootstrap(voters);
  return {
    entries: allEntries(founding),
    hardState: founding.initialState().hardState,
  };
}

/** Plans a persist; throws (changing nothing) when the batch breaks the log's rules. */
export function planPersist(current: Storage, batch: PersistBatch): StorageChange {
  const oldFirst = current.firstIndex();
  const oldLast = current.lastIndex();
  // A snapshot no newer than ours is already covered, as in MemoryStorage.
  const snapshot = batch.snapshot && batch.snapshot.metadata.index > current.snapshot().metadata.index ? batch.snapshot : undefined;
  const snapIndex = snapshot ? snapshot.metadata.index : current.snapshot().metadata.index;
  // A snapshot from the leader replaces the whole log.
  const start = snapshot ? snapIndex : oldFirst - 1;
  const baseLast = snapshot ? snapIndex : oldLast;
  const termAt = (i: number): number => (i === snapIndex && snapshot ? snapshot.metadata.term : current.term(i));

  checkBatchEntries(batch.entries);
  let entries: readonly Entry[] = [];
  if (batch.entries.length > 0) {
    const first = batch.entries[0]!.index;
    if (first > baseLast + 1) {
      throw new Error(`invariant: append at ${first} leaves a gap after ${baseLast}`);
    }
    // Entries at or before the snapshot are already covered by it (and
    // committed: the log's catch-up entries before it stay as they are).
    entries = batch.entries.slice(Math.max(0, snapIndex + 1 - first));
  }
  const lastIndex = entries.length > 0 ? entries[entries.length - 1]!.index : baseLast;
  if (entries.length > 0) {
    const head = entries[0]!;
    const prevTerm = termAt(head.index - 1);
    if (head.term < prevTerm) {
      throw new Error(`invariant: entry ${head.index} has term ${head.term}, lower than term ${prevTerm} of entry ${head.index - 1}`);
    }
  }
  const hardState = batch.hardState ?? current.initialState().hardState;
  checkCommit(hardState.commit, snapIndex, lastIndex);
  return {
    kind: "persist",
    ...(snapshot ? { snapshot } : {}),
    entries,
    ...(batch.hardState ? { hardState: batch.hardState } : {}),
    removed: removedIndexes(oldFirst, oldLast, start + 1, lastIndex),
    firstIndex: start + 1,
    lastIndex,
  };
}

/**
 * Plans recording a snapshot of the applied state at `index` and dropping
 * the log up to it; undefined when the stored snapshot already covers it.
 * The `catchUpEntries` entries before `index` stay in memory, as far as
 * the log has them, so a follower that little behind is sent entries, not
 * the whole state. The disk drops them with the rest: its format stays the
 * one the previous release reads (a member may be rolled back to it), and
 * a restarted member's log starts at its snapshot until its next
 * compaction keeps catch-up entries again.
 */
export function planCompaction(current: Storage, index: number, confState: ConfState, data: Uint8Array, catchUpEntries = 0): StorageChange | undefined {
  const oldFirst = current.firstIndex();
  const oldLast = current.lastIndex();
  if (index <= current.snapshot().metadata.index) return undefined;
  if (index > oldLast) throw new Error(`invariant: snapshot at ${index} past last index ${oldLast}`);
  if (!Number.isSafeInteger(catchUpEntries) || catchUpEntries < 0) throw new Error(`invariant: catch-up entries must be a whole number ≥ 0, got ${catchUpEntries}`);
  // Applied ≤ commit: a snapshot past the commit index would hold state the
  // group may never agree on, and the hard state would then precede it.
  const commit = current.initialState().hardState.commit;
  if (index > commit) throw new Error(`invariant: snapshot at ${index} past the commit index ${commit}`);
  const snapshot: Snapshot = { metadata: { index, term: current.term(index), confState }, data };
  const start = Math.max(oldFirst - 1, index - catchUpEntries);
  return {
    kind: "compaction",
    snapshot,
    entries: [],
    removed: removedIndexes(oldFirst, oldLast, index + 1, oldLast),
    firstIndex: start + 1,
    lastIndex: oldLast,
  };
}

/**
 * Applies a planned change to an in-memory store (after the disk has it).
 * `asDisk`: to a store that models the disk itself (the simulation's), so
 * it keeps no catch-up entries and its log may start later than planned.
 */
export function applyChange(memory: MemoryStorage, change: StorageChange, asDisk = false): void {
  if (change.kind === "compaction") {
    const meta = change.snapshot!.metadata;
    memory.createSnapshot(meta.index, meta.confState, change.snapshot!.data, asDisk ? meta.index + 1 : change.firstIndex);
  } else {
    if (change.snapshot) memory.applySnapshot(change.snapshot);
    memory.append(change.entries);
    if (change.hardState) memory.setHardState(change.hardState);
  }
  // The disk was written from the plan; the copy must now agree with it.
  const firstAgrees = asDisk ? memory.firstIndex() >= change.firstIndex : memory.firstIndex() === change.firstIndex;
  if (!firstAgrees || memory.lastIndex() !== change.lastIndex) {
    throw new Error(
      `invariant: planned log [${change.firstIndex}, ${change.lastIndex}] but memory holds [${memory.firstIndex()}, ${memory.lastIndex()}]`,
    );
  }
}

/** What a disk holds of a store: no catch-up entries, the log starts at the snapshot (see planCompaction). */
export function whatTheDiskKeeps(stored: StoredLog): StoredLog {
  const { index, term } = stored.snapshot.metadata;
  if (stored.logStart.index >= index) return stored;
  return { ...stored, logStart: { index, term }, entries: stored.entries.filter((e) => e.index > index) };
}

/** True when the change writes nothing (no need to pay for a synced write). */
export function isEmptyChange(change: StorageChange): boolean {
  return !change.snapshot && change.entries.length === 0 && !change.hardState && change.removed.length === 0;
}

/** Every entry of a store's log, in order. */
export function allEntries(storage: Storage): Entry[] {
  return storage.entries(storage.firstIndex(), storage.lastIndex() + 1, Number.POSITIVE_INFINITY);
}

/**
 * The old log [oldFirst, oldLast] minus the new one [newFirst, newLast]:
 * what falls before the new first index, and what lies past the new end.
 * Indexes inside the new log are either kept or overwritten by a put.
 */
function removedIndexes(oldFirst: number, oldLast: number, newFirst: number, newLast: number): IndexRange[] {
  const ranges: IndexRange[] = [];
  const belowTo = Math.min(oldLast, newFirst - 1);
  if (oldFirst <= belowTo) ranges.push({ from: oldFirst, to: belowTo });
  const aboveFrom = Math.max(oldFirst, newLast + 1, belowTo + 1);
  if (aboveFrom <= oldLast) ranges.push({ from: aboveFrom, to: oldLast });
  return ranges;
}

function checkBatchEntries(entries: readonly Entry[]): void {
  for (let i = 1; i < entries.length; i++) {
    const prev = entries[i - 1]!;
    const e = entries[i]!;
    if (e.index !== prev.index + 1) throw new Error(`invariant: batch entry ${e.index} follows entry ${prev.index}`);
    if (e.term < prev.term) throw new Error(`invariant: batch entry ${e.index} has term ${e.term} after term ${prev.term}`);
  }
}

function checkCommit(commit: number, snapIndex: number, lastIndex: number): void {
  if (commit > lastIndex) throw new Error(`invariant: commit ${commit} would be past the last index ${lastIndex}`);
  if (commit < snapIndex) throw new Error(`invariant: commit ${commit} would be before the snapshot index ${snapIndex}`);
}

/**
 * MemoryStorage with the DurableStorage contract: writes run one at a time
 * in call order, a persist may not start before the previous one resolved,
 * and the read side changes only when the write resolves, as on disk.
 * The synchronous writers inherited from MemoryStorage stay available to
 * code that drives the store directly (the simulation).
 */
export class MemoryDurableStorage extends MemoryStorage implements DurableStorage {
  private queue: Promise<void> = Promise.resolve();
  private persistInFlight = false;
  private closing = false;
  /** The first durable write that failed: the disk may or may not hold it. */
  private writeFailure: unknown = undefined;

  /** `writeDurably` puts each change on disk first; by default there is no disk. */
  constructor(private readonly writeDurably: ChangeWriter = async () => {}) {
    super();
  }

  /** A founding member's store, identical to MemoryStorage.bootstrap(voters). */
  static override bootstrap(voters: readonly NodeId[]): MemoryDurableStorage {
    const store = new MemoryDurableStorage();
    applyChange(store, planPersist(store, bootstrapBatch(voters)));
    return store;
  }

  persist(batch: PersistBatch): Promise<void> {
    if (this.persistInFlight) {
      return Promise.reject(new Error("invariant: persist called before the previous persist resolved"));
    }
    this.persistInFlight = true;
    const done = this.enqueue(async () => {
      await this.write(planPersist(this, batch));
    });
    return done.finally(() => {
      this.persistInFlight = false;
    });
  }

  compact(index: number, confState: ConfState, data: Uint8Array, catchUpEntries = 0): Promise<Snapshot> {
    return this.enqueue(async () => {
      const change = planCompaction(this, index, confState, data, catchUpEntries);
      if (change) await this.write(change);
      return this.snapshot();
    });
  }

  /** Waits for the writes already asked for; later writes are refused. */
  async close(): Promise<void> {
    this.closing = true;
    await this.queue;
  }

  /** What survives a crash of the owner: the applied changes, no writer. */
  override clone(): MemoryDurableStorage {
    const copy = new MemoryDurableStorage();
    copy.load(whatTheDiskKeeps(this.stored()));
    return copy;
  }

  private async write(change: StorageChange): Promise<void> {
    if (isEmptyChange(change)) return;
    try {
      await this.writeDurably(change);
    } catch (err) {
      this.writeFailure = err;
      throw err;
    }
    applyChange(this, change);
  }

  private enqueue<T>(work: () => Promise<T>): Promise<T> {
    if (this.closing) return Promise.reject(new Error("storage is closed"));
    const run = this.queue.then(() => {
      // After a failed write the disk holds either the old or the new
      // state; only a restart (reloading from disk) can tell which.
      if (this.writeFailure !== undefined) {
        throw new Error("an earlier write failed; restart the member to reload its disk", { cause: this.writeFailure });
      }
      return work();
    });
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }
}
