/**
 * What the driver needs of a member's disk, beside the read side the core
 * uses (Storage). LevelStorage is the real one; MemoryStorage's twin
 * (MemoryDurableStorage) keeps the same contract in memory.
 */
import type { Storage } from "../raft/storage.js";
import type { ConfState, Entry, HardState, Snapshot } from "../raft/types.js";

export interface PersistBatch {
  readonly hardState?: HardState;
  readonly entries: readonly Entry[];
  readonly snapshot?: Snapshot;
}

export interface DurableStorage extends Storage {
  /**
   * Writes snapshot, entries (replacing any conflicting suffix) and hard
   * state as ONE atomic, synced write. Resolves only once it is on disk;
   * the read side (Storage) reflects it when the promise resolves.
   */
  persist(batch: PersistBatch): Promise<void>;
  /**
   * Records a snapshot of the applied state at `index` and deletes the log
   * up to it, in one atomic synced write: no range is ever deleted that the
   * stored snapshot does not cover. The `catchUpEntries` entries before
   * `index` stay readable in memory (as far as the log has them), so a
   * follower that little behind is sent them rather than the snapshot;
   * the disk does not keep them.
   */
  compact(index: number, confState: ConfState, data: Uint8Array, catchUpEntries?: number): Promise<Snapshot>;
  close(): Promise<void>;
}
