/**
 * A member's durable Raft state in its own LevelDB: the log, the hard state
 * and the latest snapshot (whose index is the applied index of the state it
 * holds, written atomically with it). Nothing else is stored.
 *
 * Key layout (utf8 keys, msgpack values):
 *   e/<index as 16 lowercase hex digits>  a run of consecutive log entries
 *                                         starting at that index (a list), or
 *                                         one entry (a map); fixed width, so
 *                                         key order is index order
 * Each persist stores its entries as one run under one key: a Ready of 256
 * entries is one put, not 256, and compaction deletes a few runs, not
 * thousands of keys. A run that a change cuts (a replaced suffix, a
 * compaction inside it) is deleted and its surviving part written again,
 * in the same batch.
 *   m/hardstate                           { term, vote, commit }
 *   m/snapshot                            { metadata, file, length, crc }:
 *                                         the data is in <dir>/snapshots/<file>
 *                                         (snapshot-files.ts: a snapshot can be
 *                                         hundreds of MB). Read also: the
 *                                         older formats with the data inline.
 * An absent m/* key means the empty value (no snapshot, zero hard state).
 *
 * Reads are synchronous, served from an in-memory copy loaded and checked
 * at open. Every write is planned against that copy, written as one synced
 * LevelDB batch, and only then applied to the copy (memory-durable-storage.ts
 * holds the plan rules, shared with the in-memory twin).
 */
import { join } from "node:path";
import { Level } from "level";
import { Packr } from "msgpackr";
import type { DurableStorage, PersistBatch } from "./durable-storage.js";
import { CorruptStateError } from "../raft/errors.js";
import { type SnapshotFileRef, SnapshotFiles } from "./snapshot-files.js";
import { type IndexRange, MemoryDurableStorage, type StorageChange, bootstrapBatch } from "./memory-durable-storage.js";
import { type InitialState, emptySnapshot } from "../raft/storage.js";
import { type ConfState, type Entry, EntryType, type HardState, type NodeId, type Snapshot, emptyHardState } from "../raft/types.js";

const HARD_STATE_KEY = "m/hardstate";
const SNAPSHOT_KEY = "m/snapshot";
const ENTRY_PREFIX = "e/";
const ENTRY_KEY = /^e\/([0-9a-f]{16})$/;

// Plain maps, no msgpackr records: every value decodes on its own, with no
// structure table that would have to be stored beside it.
const packr = new Packr({ useRecords: false });

type Db = Level<string, Uint8Array>;

/** A stored run of consecutive entries: the indexes under one key. */
interface Run {
  readonly first: number;
  readonly last: number;
}

export interface LevelStorageOptions {
  /**
   * The founding voters of a new group. Used only when the database is
   * empty; every founding member must be given the same list.
   */
  readonly bootstrapVoters?: readonly NodeId[];
}

export class LevelStorage implements DurableStorage {
  /** The stored runs, in index order: each key's first and last index. */
  private runs: Run[] = [];
  private copy!: MemoryDurableStorage;
  /** Snapshot files written ahead of their compaction, by the data they hold. */
  private readonly prewritten = new Map<Uint8Array, SnapshotFileRef>();

  private constructor(
    private readonly db: Db,
    private readonly files: SnapshotFiles,
  ) {}

  /**
   * Opens (creating if needed) the member's database in `dir` and loads it.
   * Throws CorruptStateError, naming what is wrong, rather than serving a
   * state Raft could not have written.
   */
  static async open(dir: string, options: LevelStorageOptions = {}): Promise<LevelStorage> {
    const db: Db = new Level<string, Uint8Array>(dir, { keyEncoding: "utf8", valueEncoding: "view" });
    await db.open();
    try {
      const files = new SnapshotFiles(join(dir, "snapshots"));
      const stored = await loadStoredState(db, files);
      checkStoredState(stored);
      files.removeAllButSync(stored.snapshotFile);
      const storage = new LevelStorage(db, files);
      storage.runs = stored.runs;
      const copy = new MemoryDurableStorage((change) => storage.writeChange(change));
      storage.copy = copy;
      if (stored.snapshot.metadata.index > 0) copy.applySnapshot(stored.snapshot);
      copy.append(stored.entries);
      copy.setHardState(stored.hardState);
      if (stored.empty && options.bootstrapVoters) await copy.persist(bootstrapBatch(options.bootstrapVoters));
      return storage;
    } catch (err) {
      await db.close().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Puts one planned change in one synced batch. Called by the read copy
   * before it applies the change, so the copy still holds the entries of
   * any run this change cuts.
   */
  private async writeChange(change: StorageChange): Promise<void> {
    // The chained batch, not db.batch(array): abstract-level's array path
    // copies and re-validates every operation.
    const batch = this.db.batch();
    const cut: IndexRange[] = [...change.removed];
    const first = change.entries[0];
    if (first) cut.push({ from: first.index, to: change.entries[change.entries.length - 1]!.index });
    const runs: Run[] = [];
    for (const run of this.runs) {
      const overlaps = cut.filter((r) => r.from <= run.last && r.to >= run.first);
      if (overlaps.length === 0) {
        runs.push(run);
        continue;
      }
      batch.del(entryKey(run.first));
      // What survives of the run: the indexes no range cuts, as new runs.
      let at = run.first;
      for (const r of overlaps.sort((a, b) => a.from - b.from)) {
        if (r.from > at) runs.push(this.rewrite(batch, at, r.from - 1));
        at = Math.max(at, r.to + 1);
      }
      if (at <= run.last) runs.push(this.rewrite(batch, at, run.last));
    }
    // The file first: the batch must never reference a snapshot not yet on disk.
    const snapshot = change.snapshot;
    const snapshotRef = snapshot ? (this.prewritten.get(snapshot.data) ?? (await this.writeSnapshotFile(snapshot))) : undefined;
    if (change.snapshot && snapshotRef) batch.put(SNAPSHOT_KEY, encodeSnapshotRef(change.snapshot, snapshotRef));
    if (first) {
      batch.put(entryKey(first.index), encodeRun(change.entries));
      runs.push({ first: first.index, last: change.entries[change.entries.length - 1]!.index });
    }
    if (change.hardState) batch.put(HARD_STATE_KEY, encodeHardState(change.hardState));
    await batch.write({ sync: true });
    this.runs = runs.sort((a, b) => a.first - b.first);
    if (snapshotRef) await this.files.removeAllBut(snapshotRef.file);
  }

  private async writeSnapshotFile(snapshot: Snapshot): Promise<SnapshotFileRef> {
    const ref = await this.files.write(snapshot.metadata.term, snapshot.metadata.index, snapshot.data);
    this.files.release(ref.file);
    return ref;
  }

  private rewrite(batch: ReturnType<Db["batch"]>, from: number, to: number): Run {
    batch.put(entryKey(from), encodeRun(this.copy.entries(from, to + 1, Infinity)));
    return { first: from, last: to };
  }

  initialState(): InitialState {
    return this.copy.initialState();
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.copy.entries(lo, hi, maxBytes);
  }

  term(i: number): number {
    return this.copy.term(i);
  }

  firstIndex(): number {
    return this.copy.firstIndex();
  }

  lastIndex(): number {
    return this.copy.lastIndex();
  }

  snapshot(): Snapshot {
    return this.copy.snapshot();
  }

  persist(batch: PersistBatch): Promise<void> {
    return this.copy.persist(batch);
  }

  /**
   * The snapshot's file is written before the compaction joins the write
   * queue: a 100 MB file and its fsync take seconds on a loaded machine,
   * and log appends queued behind them would stall the whole group.
   */
  async compact(index: number, confState: ConfState, data: Uint8Array, catchUpEntries = 0): Promise<Snapshot> {
    // Only an index already committed on disk has a term that cannot
    // change; anything else is the queue's to decide (and refuse).
    const durable = index > this.copy.snapshot().metadata.index && index <= Math.min(this.copy.lastIndex(), this.copy.initialState().hardState.commit);
    if (!durable) return this.copy.compact(index, confState, data, catchUpEntries);
    const ref = await this.files.write(this.copy.term(index), index, data);
    this.prewritten.set(data, ref);
    try {
      return await this.copy.compact(index, confState, data, catchUpEntries);
    } finally {
      this.prewritten.delete(data);
      this.files.release(ref.file);
    }
  }

  /** Finishes the writes already asked for, then closes the database. */
  async close(): Promise<void> {
    try {
      await this.copy.close();
    } finally {
      await this.db.close();
    }
  }
}

/** The entry key of `index`: fixed-width hex, so key order is index order. */
function entryKey(index: number): string {
  return ENTRY_PREFIX + index.toString(16).padStart(16, "0");
}

// ---------------------------------------------------------------- encoding

// Only the known fields are written, so nothing a caller hung on an object
// ends up on disk.
function encodeRun(entries: readonly Entry[]): Uint8Array {
  return packr.pack(entries.map((e) => ({ term: e.term, index: e.index, type: e.type, data: e.data })));
}

function encodeHardState(hs: HardState): Uint8Array {
  return packr.pack({ term: hs.term, vote: hs.vote, commit: hs.commit });
}

/** Inline formats read for compatibility: 1 (all msgpack), 2 (0x02, u32 metadata length, metadata, data). */
const INLINE_SNAPSHOT_FORMAT = 2;

function encodeSnapshotRef(s: Snapshot, ref: SnapshotFileRef): Uint8Array {
  const { index, term, confState } = s.metadata;
  return packr.pack({
    metadata: { index, term, confState: { voters: [...confState.voters], learners: [...confState.learners] } },
    file: ref.file,
    length: ref.length,
    crc: ref.crc,
  });
}

function unpackValue(key: string, bytes: Uint8Array): unknown {
  try {
    return packr.unpack(bytes);
  } catch (err) {
    throw new CorruptStateError(`value of key ${key} cannot be decoded: ${(err as Error).message}`, { cause: err });
  }
}

function asMap(key: string, value: unknown): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw new CorruptStateError(`value of key ${key} is not a map`);
  }
  return value as Record<string, unknown>;
}

function decodeValue(key: string, bytes: Uint8Array): Record<string, unknown> {
  return asMap(key, unpackValue(key, bytes));
}

function malformed(key: string, what: string): CorruptStateError {
  return new CorruptStateError(`value of key ${key} is malformed: ${what}`);
}

function isIndex(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function isStringList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === "string");
}

/**
 * msgpackr hands binary back as a Buffer; a plain Uint8Array view (no copy)
 * keeps values identical in type to what MemoryStorage holds.
 */
function bytesOf(key: string, field: string, v: unknown): Uint8Array {
  if (!(v instanceof Uint8Array)) throw malformed(key, `${field} is not binary`);
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

function decodeEntryValue(key: string, v: Record<string, unknown>): Entry {
  if (!isIndex(v.term) || v.term === 0) throw malformed(key, "term is not a positive integer");
  if (!isIndex(v.index) || v.index === 0) throw malformed(key, "index is not a positive integer");
  if (v.type !== EntryType.Normal && v.type !== EntryType.ConfChange) throw malformed(key, `unknown entry type ${String(v.type)}`);
  return { term: v.term, index: v.index, type: v.type, data: bytesOf(key, "data", v.data) };
}

/** A run (a list of entry maps) or a single entry (a map). */
function decodeEntries(key: string, bytes: Uint8Array): Entry[] {
  const value = unpackValue(key, bytes);
  if (Array.isArray(value)) {
    if (value.length === 0) throw malformed(key, "the run of entries is empty");
    return value.map((v) => decodeEntryValue(key, asMap(key, v)));
  }
  return [decodeEntryValue(key, asMap(key, value))];
}

function decodeHardState(key: string, bytes: Uint8Array): HardState {
  const v = decodeValue(key, bytes);
  if (!isIndex(v.term)) throw malformed(key, "term is not a non-negative integer");
  if (typeof v.vote !== "string") throw malformed(key, "vote is not a string");
  if (!isIndex(v.commit)) throw malformed(key, "commit is not a non-negative integer");
  return { term: v.term, vote: v.vote, commit: v.commit };
}

function decodeSnapshot(key: string, bytes: Uint8Array, files: SnapshotFiles): { snapshot: Snapshot; file?: string } {
  if (bytes[0] !== INLINE_SNAPSHOT_FORMAT) {
    const v = decodeValue(key, bytes);
    if (v.file === undefined) return { snapshot: decodeSnapshotFields(key, v) };
    if (typeof v.file !== "string" || !isIndex(v.length) || !isIndex(v.crc)) throw malformed(key, "the snapshot file reference is not { file, length, crc }");
    const data = files.read({ file: v.file, length: v.length, crc: v.crc });
    return { snapshot: decodeSnapshotFields(key, { metadata: v.metadata, data }), file: v.file };
  }
  if (bytes.length < 5) throw malformed(key, "shorter than its header");
  const metaLength = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).readUInt32BE(1);
  if (5 + metaLength > bytes.length) throw malformed(key, `metadata length ${metaLength} runs past the end`);
  const metadata = unpackValue(key, bytes.subarray(5, 5 + metaLength));
  // A view, not a copy: the state machine shares this buffer (see state-snapshot.ts).
  return { snapshot: decodeSnapshotFields(key, { metadata, data: bytes.subarray(5 + metaLength) }) };
}

/** The snapshot's fields: { metadata, data }, from either stored format (1 was all msgpack). */
function decodeSnapshotFields(key: string, v: Record<string, unknown>): Snapshot {
  const meta = v.metadata as Record<string, unknown> | undefined;
  if (typeof meta !== "object" || meta === null) throw malformed(key, "metadata is missing");
  if (!isIndex(meta.index) || meta.index === 0) throw malformed(key, "metadata.index is not a positive integer");
  if (!isIndex(meta.term) || meta.term === 0) throw malformed(key, "metadata.term is not a positive integer");
  const cs = meta.confState as Record<string, unknown> | undefined;
  if (typeof cs !== "object" || cs === null || !isStringList(cs.voters) || !isStringList(cs.learners)) {
    throw malformed(key, "metadata.confState is not { voters, learners } lists of member ids");
  }
  return {
    metadata: { index: meta.index, term: meta.term, confState: { voters: cs.voters, learners: cs.learners } },
    data: bytesOf(key, "data", v.data),
  };
}

// ----------------------------------------------------------- startup checks

interface StoredState {
  readonly empty: boolean;
  readonly hardState: HardState;
  readonly snapshot: Snapshot;
  /** The file holding the snapshot's data, when it is in one. */
  readonly snapshotFile: string | undefined;
  /** In key order, which is index order. */
  readonly entries: readonly Entry[];
  readonly runs: Run[];
}

async function loadStoredState(db: Db, files: SnapshotFiles): Promise<StoredState> {
  let empty = true;
  let hardState = emptyHardState;
  let snapshot = emptySnapshot;
  let snapshotFile: string | undefined;
  const entries: Entry[] = [];
  const runs: Run[] = [];
  for await (const [key, value] of db.iterator()) {
    empty = false;
    if (key === HARD_STATE_KEY) {
      hardState = decodeHardState(key, value);
    } else if (key === SNAPSHOT_KEY) {
      ({ snapshot, file: snapshotFile } = decodeSnapshot(key, value, files));
    } else {
      const match = ENTRY_KEY.exec(key);
      if (!match) throw new CorruptStateError(`unexpected key ${JSON.stringify(key)}: not a Raft log, hard state or snapshot key`);
      const run = decodeEntries(key, value);
      const keyIndex = Number.parseInt(match[1]!, 16);
      run.forEach((entry, i) => {
        if (entry.index !== keyIndex + i) {
          throw new CorruptStateError(`key ${key} (index ${keyIndex + i}) holds the entry of index ${entry.index}`);
        }
        entries.push(entry);
      });
      runs.push({ first: keyIndex, last: keyIndex + run.length - 1 });
    }
  }
  return { empty, hardState, snapshot, snapshotFile, entries, runs };
}

/** The invariants every state written by persist/compact keeps. */
function checkStoredState({ hardState, snapshot, entries }: StoredState): void {
  const snapIndex = snapshot.metadata.index;
  const snapTerm = snapshot.metadata.term;
  let prev = { index: snapIndex, term: snapTerm };
  for (const e of entries) {
    if (e.index !== prev.index + 1) {
      throw new CorruptStateError(
        e.index <= snapIndex
          ? `log entry ${e.index} is at or before the snapshot index ${snapIndex}: compaction should have deleted it`
          : `log is not contiguous after the snapshot index ${snapIndex}: entry ${e.index} follows ${prev.index}, entries ${prev.index + 1}..${e.index - 1} are missing`,
      );
    }
    if (e.term < prev.term) {
      throw new CorruptStateError(
        prev.index === snapIndex
          ? `snapshot (index ${snapIndex}, term ${snapTerm}) contradicts the log: the next entry ${e.index} has the lower term ${e.term}`
          : `log terms go back: entry ${e.index} has term ${e.term} after term ${prev.term} of entry ${prev.index}`,
      );
    }
    prev = e;
  }
  const lastIndex = prev.index;
  if (hardState.commit > lastIndex) {
    throw new CorruptStateError(`hard state commit ${hardState.commit} is past the last index ${lastIndex}`);
  }
  if (hardState.commit < snapIndex) {
    throw new CorruptStateError(`hard state commit ${hardState.commit} is before the snapshot index ${snapIndex}`);
  }
}
