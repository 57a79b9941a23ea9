/**
 * A member's disk under a crash test, and the write stream it carries out.
 *
 * `StorageWorkload` produces, from a seed, the writes a Raft driver makes:
 * appends with commit advances, conflicting suffixes replaced under a new
 * term, compactions, and snapshots from a leader (with or without entries
 * after them). It keeps a reference `MemoryStorage` updated through its own
 * synchronous writers, independent of the durable stores under test, so
 * every store can be compared with it after any prefix of the stream.
 *
 * Run as a script (`node --import tsx storage-crash-child.ts <dir> <seed>`)
 * it opens a LevelStorage in <dir> and carries the stream out, printing
 * `ack <n>` once write n resolved, until it is killed (or a safety limit).
 */
import { pathToFileURL } from "node:url";
import type { DurableStorage, PersistBatch } from "../../src/raft-runtime/durable-storage.js";
import { LevelStorage } from "../../src/raft-runtime/level-storage.js";
import { SeededRandom } from "../../src/raft/random.js";
import { MemoryStorage } from "../../src/raft/storage.js";
import { type ConfState, type Entry, EntryType, type HardState } from "../../src/raft/types.js";

export type StorageWrite =
  | { readonly kind: "persist"; readonly batch: PersistBatch }
  | { readonly kind: "compact"; readonly index: number; readonly confState: ConfState; readonly data: Uint8Array; readonly catchUpEntries: number };

export async function carryOut(store: DurableStorage, write: StorageWrite): Promise<void> {
  if (write.kind === "persist") await store.persist(write.batch);
  else await store.compact(write.index, write.confState, write.data, write.catchUpEntries);
}

const confState: ConfState = { voters: ["n1", "n2", "n3"], learners: ["n4"] };

export class StorageWorkload {
  /** The reference: the state after every write produced so far. */
  readonly model = new MemoryStorage();
  /** Writes produced so far. */
  count = 0;
  private readonly rng: SeededRandom;
  private term = 1;
  private vote = "n1";

  constructor(seed: number) {
    this.rng = new SeededRandom(seed);
  }

  /** The next write; the model already reflects it. */
  next(): StorageWrite {
    this.count++;
    const write = this.choose();
    if (write.kind === "compact") {
      this.model.createSnapshot(write.index, write.confState, write.data, write.index + 1 - write.catchUpEntries);
    } else {
      if (write.batch.snapshot) this.model.applySnapshot(write.batch.snapshot);
      this.model.append(write.batch.entries);
      if (write.batch.hardState) this.model.setHardState(write.batch.hardState);
    }
    return write;
  }

  private choose(): StorageWrite {
    const rng = this.rng;
    const m = this.model;
    const commit = m.initialState().hardState.commit;
    const snapIndex = m.snapshot().metadata.index;
    const last = m.lastIndex();
    const roll = rng.next();
    if (roll < 0.12 && commit > snapIndex) {
      // Compaction at some applied (≤ commit) index past the snapshot.
      const index = snapIndex + 1 + rng.intBelow(commit - snapIndex);
      // Now and then keeping catch-up entries behind it (in memory only).
      const catchUpEntries = rng.chance(0.5) ? rng.intBelow(8) : 0;
      return { kind: "compact", index, confState, data: this.bytes(1 + rng.intBelow(2000)), catchUpEntries };
    }
    if (roll < 0.18) {
      // A leader's snapshot past our commit, sometimes inside our log (which
      // it still replaces), with a few entries after it in the same batch.
      this.newTerm();
      const index = Math.max(commit, snapIndex) + 1 + rng.intBelow(last - commit + 5);
      const snapshot = { metadata: { index, term: this.term, confState }, data: this.bytes(rng.intBelow(3000)) };
      return this.persist(this.entries(index + 1, rng.intBelow(4)), index, snapshot);
    }
    if (roll < 0.3 && last > commit) {
      // A new leader overwrites our uncommitted suffix from some point on.
      this.newTerm();
      const from = commit + 1 + rng.intBelow(last - commit);
      return this.persist(this.entries(from, 1 + rng.intBelow(4)), commit);
    }
    if (roll < 0.34) return this.persist([], commit);
    const entries = this.entries(last + 1, 1 + rng.intBelow(4));
    const newLast = last + entries.length;
    return this.persist(entries, commit + rng.intBelow(newLast - commit + 1));
  }

  private persist(entries: Entry[], commit: number, snapshot?: PersistBatch["snapshot"]): StorageWrite {
    const hardState: HardState = { term: this.term, vote: this.vote, commit };
    return { kind: "persist", batch: { entries, hardState, ...(snapshot ? { snapshot } : {}) } };
  }

  private newTerm(): void {
    this.term += 1 + this.rng.intBelow(2);
    this.vote = this.rng.pick(["", "n1", "n2", "n3"]);
  }

  private entries(from: number, n: number): Entry[] {
    return Array.from({ length: n }, (_, i) => ({
      term: this.term,
      index: from + i,
      type: this.rng.chance(0.1) ? EntryType.ConfChange : EntryType.Normal,
      // Now and then a large one, so some batches span many disk blocks.
      data: this.bytes(this.rng.chance(0.05) ? 20_000 : this.rng.intBelow(300)),
    }));
  }

  private bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.rng.intBelow(256);
    return out;
  }
}

async function main(dir: string, seed: number): Promise<void> {
  const store = await LevelStorage.open(dir);
  const workload = new StorageWorkload(seed);
  // Only a safety net for a test that forgot to kill us.
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    await carryOut(store, workload.next());
    process.stdout.write(`ack ${workload.count}\n`);
  }
  await store.close();
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [dir, seed] = process.argv.slice(2);
  if (!dir || !seed) throw new Error("usage: storage-crash-child.ts <dir> <seed>");
  await main(dir, Number(seed));
}
