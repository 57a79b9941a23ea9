/**
 * A member's disk in the simulation: what survives a crash (the platter)
 * and the store its running driver writes through, the real
 * MemoryDurableStorage with a writer whose writes take virtual time. A
 * write lands on the platter only when it completes; a crash loses every
 * write still in flight, as a power cut loses what was not yet synced.
 */
import { type Entry, type NodeId, type SeededRandom } from "../../src/raft/index.js";
import { MemoryDurableStorage, type StorageChange, applyChange, whatTheDiskKeeps } from "../../src/raft-runtime/memory-durable-storage.js";
import type { ProcessClock } from "../../src/time/process-clock.js";

export interface DiskListener {
  /** An entry reached the platter, with the term of the entry before it (undefined when compacted). */
  persisted(id: NodeId, entry: Entry, prevTerm: number | undefined): void;
}

export class SimDisk {
  /** What is durably on disk. */
  platter: MemoryDurableStorage;
  /** Bumped on every crash: a write of an older incarnation never lands. */
  private incarnation = 0;
  /** Chance that a write is slow (several ms), and how slow at most. */
  slowChance = 0.3;
  slowMaxMs = 6;

  constructor(
    readonly id: NodeId,
    platter: MemoryDurableStorage,
    private readonly rng: SeededRandom,
    private readonly listener: DiskListener,
  ) {
    this.platter = platter;
  }

  /** A store holding what is on the platter, writing through to it on `clock`'s process. */
  open(clock: ProcessClock): MemoryDurableStorage {
    const incarnation = ++this.incarnation;
    const store = new MemoryDurableStorage((change) => this.write(change, clock, incarnation));
    copyInto(this.platter, store);
    return store;
  }

  /** The process died: its writes in flight never land. */
  crash(): void {
    this.incarnation++;
  }

  /** The disk is gone for good (a replaced member): an empty one. */
  wipe(): void {
    this.incarnation++;
    this.platter = new MemoryDurableStorage();
  }

  private write(change: StorageChange, clock: ProcessClock, incarnation: number): Promise<void> {
    const delay = this.rng.chance(this.slowChance) ? 1 + this.rng.intBelow(this.slowMaxMs) : 0;
    return new Promise((resolve) => {
      clock.setTimeout(() => {
        if (incarnation !== this.incarnation) return; // crashed meanwhile: never lands, never resolves
        this.land(change);
        resolve();
      }, delay);
    });
  }

  private land(change: StorageChange): void {
    applyChange(this.platter, change, true);
    for (const e of change.entries) {
      let prevTerm: number | undefined;
      try {
        prevTerm = this.platter.term(e.index - 1);
      } catch {
        prevTerm = undefined;
      }
      this.listener.persisted(this.id, e, prevTerm);
    }
  }
}

/** What a restart reads back: the platter as LevelStorage keeps it (no catch-up entries). */
function copyInto(from: MemoryDurableStorage, to: MemoryDurableStorage): void {
  to.load(whatTheDiskKeeps(from.stored()));
}
