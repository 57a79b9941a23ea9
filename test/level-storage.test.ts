/**
 * The durable stores: the same behaviour from LevelStorage and its in-memory
 * twin, what LevelStorage puts on disk (keys and values, written here
 * independently with `level` and msgpackr), the startup checks, and crash
 * consistency under SIGKILL of a writing process.
 */
import { spawn } from "node:child_process";
import { readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Level } from "level";
import { Packr } from "msgpackr";
import { afterEach, describe, expect, it } from "vitest";
import type { DurableStorage, PersistBatch } from "../src/raft-runtime/durable-storage.js";
import { CompactedError, ConfigError, CorruptStateError, UnavailableError } from "../src/raft/errors.js";
import { LevelStorage } from "../src/raft-runtime/level-storage.js";
import { MemoryDurableStorage, whatTheDiskKeeps } from "../src/raft-runtime/memory-durable-storage.js";
import { MemoryStorage, type Storage, emptySnapshot } from "../src/raft/storage.js";
import { type Entry, EntryType, type Snapshot, emptyHardState } from "../src/raft/types.js";
import { StorageWorkload, carryOut } from "./support/storage-crash-child.js";
import { TempDirs } from "./support/tmp-dir.js";

const tmp = new TempDirs();
const open = new Set<DurableStorage>();
afterEach(async () => {
  await Promise.all([...open].map((s) => s.close()));
  open.clear();
  await tmp.removeAll();
});

// ------------------------------------------------------------------ helpers

/** Entry data that names its index and term, so a stale entry cannot pass for a new one. */
function entry(index: number, term: number, size = 8): Entry {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = (index * 31 + term * 7 + i) & 0xff;
  return { term, index, type: EntryType.Normal, data };
}

function entries(from: number, to: number, term: number): Entry[] {
  return Array.from({ length: to - from + 1 }, (_, i) => entry(from + i, term));
}

function hs(term: number, commit: number, vote = "n1") {
  return { term, vote, commit };
}

const cs = { voters: ["n1", "n2", "n3"], learners: [] };

function snap(index: number, term: number, data = new Uint8Array([index & 0xff, 1, 2])): Snapshot {
  return { metadata: { index, term, confState: cs }, data };
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");

/** Everything a store serves, in a form that compares quickly (bytes as hex). */
function stateOf(s: Storage) {
  const ents = s.entries(s.firstIndex(), s.lastIndex() + 1, Number.POSITIVE_INFINITY);
  return {
    initialState: s.initialState(),
    snapshot: { metadata: s.snapshot().metadata, data: hex(s.snapshot().data) },
    firstIndex: s.firstIndex(),
    lastIndex: s.lastIndex(),
    snapshotTerm: s.term(s.firstIndex() - 1),
    entries: ents.map((e) => ({ ...e, data: hex(e.data) })),
  };
}

/** What a restart reads back of `s`: no catch-up entries. */
function diskImage(s: MemoryStorage): MemoryStorage {
  const image = new MemoryStorage();
  image.load(whatTheDiskKeeps(s.stored()));
  return image;
}

interface StoreKind {
  readonly name: string;
  create(bootstrapVoters?: readonly string[]): Promise<DurableStorage>;
  /** Closes `store` and returns what survived it. */
  reopen(store: DurableStorage): Promise<DurableStorage>;
}

const dirOf = new Map<DurableStorage, string>();

const levelKind: StoreKind = {
  name: "LevelStorage",
  async create(bootstrapVoters) {
    const dir = await tmp.make("convene-storage-");
    const s = await LevelStorage.open(dir, bootstrapVoters ? { bootstrapVoters } : {});
    dirOf.set(s, dir);
    open.add(s);
    return s;
  },
  async reopen(store) {
    const dir = dirOf.get(store)!;
    open.delete(store);
    await store.close();
    const s = await LevelStorage.open(dir);
    dirOf.set(s, dir);
    open.add(s);
    return s;
  },
};

const memoryKind: StoreKind = {
  name: "MemoryDurableStorage",
  async create(bootstrapVoters) {
    const s = bootstrapVoters ? MemoryDurableStorage.bootstrap(bootstrapVoters) : new MemoryDurableStorage();
    open.add(s);
    return s;
  },
  async reopen(store) {
    const survivor = (store as MemoryDurableStorage).clone();
    open.delete(store);
    await store.close();
    open.add(survivor);
    return survivor;
  },
};

// ------------------------------------------------------ shared behaviour

describe.each([levelKind, memoryKind])("$name", (kind) => {
  it("starts empty", async () => {
    const s = await kind.create();
    expect(s.firstIndex()).toBe(1);
    expect(s.lastIndex()).toBe(0);
    expect(s.term(0)).toBe(0);
    expect(s.snapshot()).toEqual(emptySnapshot);
    expect(s.initialState()).toEqual({ hardState: emptyHardState, confState: { voters: [], learners: [] } });
    expect(() => s.term(1)).toThrow(UnavailableError);
  });

  it("bootstraps exactly like MemoryStorage.bootstrap, and keeps it across a reopen", async () => {
    const voters = ["n1", "n2", "n3"];
    const s = await kind.create(voters);
    const expected = stateOf(MemoryStorage.bootstrap(voters));
    expect(expected.lastIndex).toBe(3);
    expect(stateOf(s)).toEqual(expected);
    expect(stateOf(await kind.reopen(s))).toEqual(expected);
  });

  it("refuses to bootstrap with no voters or repeated voters", async () => {
    await expect(kind.create([])).rejects.toThrow(ConfigError);
    await expect(kind.create(["n1", "n1"])).rejects.toThrow(/distinct/);
  });

  it("round-trips entries, hard state and binary data across a reopen", async () => {
    const s = await kind.create();
    const batch = {
      entries: [entry(1, 1, 0), { ...entry(2, 1, 300), type: EntryType.ConfChange }, entry(3, 2, 70_000)],
      hardState: hs(2, 2, "n3"),
    };
    await s.persist(batch);
    const before = stateOf(s);
    expect(before.lastIndex).toBe(3);
    expect(before.entries).toEqual(batch.entries.map((e) => ({ ...e, data: hex(e.data) })));
    expect(before.initialState.hardState).toEqual(hs(2, 2, "n3"));
    const r = await kind.reopen(s);
    expect(stateOf(r)).toEqual(before);
    const data = r.entries(3, 4, 0)[0]!.data;
    expect(data).toBeInstanceOf(Uint8Array);
    expect(data).toEqual(batch.entries[2]!.data);
  });

  it("changes what it serves only when the persist resolves", async () => {
    const s = await kind.create();
    const done = s.persist({ entries: entries(1, 2, 1), hardState: hs(1, 1) });
    expect(s.lastIndex()).toBe(0);
    await done;
    expect(s.lastIndex()).toBe(2);
  });

  it("replaces a conflicting suffix, and the old entries stay gone after a reopen", async () => {
    const s = await kind.create();
    await s.persist({ entries: entries(1, 10, 1), hardState: hs(1, 3) });
    await s.persist({ entries: entries(6, 7, 2), hardState: hs(2, 3) });
    const check = (t: Storage) => {
      expect(t.lastIndex()).toBe(7);
      expect(t.entries(1, 8, Infinity).map((e) => [e.index, e.term])).toEqual([
        [1, 1], [2, 1], [3, 1], [4, 1], [5, 1], [6, 2], [7, 2],
      ]);
      expect(t.entries(6, 7, Infinity)[0]!.data).toEqual(entry(6, 2).data);
      expect(() => t.term(8)).toThrow(UnavailableError);
    };
    check(s);
    check(await kind.reopen(s));
  });

  it("compacts exactly up to the index, and the compaction survives a reopen", async () => {
    const s = await kind.create();
    await s.persist({ entries: [...entries(1, 5, 1), ...entries(6, 10, 2)], hardState: hs(2, 8) });
    const data = new Uint8Array([9, 8, 7]);
    const taken = await s.compact(6, cs, data);
    expect(taken).toEqual({ metadata: { index: 6, term: 2, confState: cs }, data });
    const check = (t: Storage) => {
      expect(t.firstIndex()).toBe(7);
      expect(t.lastIndex()).toBe(10);
      expect(t.term(6)).toBe(2);
      expect(() => t.term(5)).toThrow(CompactedError);
      expect(() => t.entries(6, 8, Infinity)).toThrow(CompactedError);
      expect(t.entries(7, 11, Infinity)).toEqual(entries(7, 10, 2));
      expect(t.snapshot().metadata).toEqual({ index: 6, term: 2, confState: cs });
      expect(t.snapshot().data).toEqual(new Uint8Array([9, 8, 7]));
      expect(t.initialState().confState).toEqual(cs);
    };
    check(s);
    const r = await kind.reopen(s);
    check(r);
    // At or before the stored snapshot: nothing to do.
    expect((await r.compact(4, { voters: [], learners: [] }, new Uint8Array())).metadata.index).toBe(6);
    check(r);
  });

  it("keeps catch-up entries behind a compaction in memory only: a reopen starts the log at the snapshot", async () => {
    const s = await kind.create();
    await s.persist({ entries: [...entries(1, 5, 1), ...entries(6, 10, 2)], hardState: hs(2, 8) });
    const taken = await s.compact(6, cs, new Uint8Array([1]), 3);
    expect(taken.metadata).toEqual({ index: 6, term: 2, confState: cs });
    expect([s.firstIndex(), s.lastIndex(), s.term(3), s.term(6)]).toEqual([4, 10, 1, 2]);
    expect(s.entries(4, 11, Infinity)).toEqual([...entries(4, 5, 1), ...entries(6, 10, 2)]);
    expect(() => s.term(2)).toThrow(CompactedError);
    // More than the log holds: kept as far as it goes, never brought back.
    await s.compact(8, cs, new Uint8Array([2]), 100);
    expect([s.firstIndex(), s.snapshot().metadata.index]).toEqual([4, 8]);
    // A leader's snapshot within them is already covered by ours: nothing changes.
    await s.persist({ snapshot: snap(7, 2), entries: [], hardState: hs(2, 8) });
    expect([s.firstIndex(), s.lastIndex(), s.snapshot().metadata.index]).toEqual([4, 10, 8]);
    const r = await kind.reopen(s);
    expect([r.firstIndex(), r.lastIndex(), r.term(8), r.snapshot().metadata.index]).toEqual([9, 10, 2, 8]);
    expect(() => r.entries(8, 9, Infinity)).toThrow(CompactedError);
    // After a reopen, the next compaction keeps catch-up entries again; a
    // newer snapshot from the leader then replaces them with the rest.
    await r.persist({ entries: entries(11, 12, 2), hardState: hs(2, 12) });
    await r.compact(11, cs, new Uint8Array([3]), 2);
    expect([r.firstIndex(), r.lastIndex()]).toEqual([10, 12]);
    await r.persist({ snapshot: snap(15, 3), entries: entries(16, 16, 3), hardState: hs(3, 15) });
    expect([r.firstIndex(), r.lastIndex(), r.term(15)]).toEqual([16, 16, 3]);
    expect(() => r.term(12)).toThrow(CompactedError);
  });

  it("refuses to compact past the last index or the commit index, changing nothing", async () => {
    const s = await kind.create();
    await s.persist({ entries: entries(1, 10, 1), hardState: hs(1, 8) });
    const before = stateOf(s);
    await expect(s.compact(11, cs, new Uint8Array())).rejects.toThrow(/past last index 10/);
    await expect(s.compact(9, cs, new Uint8Array())).rejects.toThrow(/past the commit index 8/);
    expect(stateOf(s)).toEqual(before);
    expect(stateOf(await kind.reopen(s))).toEqual(before);
  });

  it("lets a snapshot from the leader replace the whole log, with entries after it", async () => {
    const s = await kind.create();
    await s.persist({ entries: entries(1, 10, 3), hardState: hs(3, 5) });
    // The leader's snapshot falls inside our log, with a lower term: it still replaces all of it.
    await s.persist({ snapshot: snap(8, 2), entries: entries(9, 9, 4), hardState: hs(4, 8) });
    const check = (t: Storage) => {
      expect(t.firstIndex()).toBe(9);
      expect(t.lastIndex()).toBe(9);
      expect(t.term(8)).toBe(2);
      expect(t.entries(9, 10, Infinity)).toEqual(entries(9, 9, 4));
      expect(t.snapshot().metadata).toEqual(snap(8, 2).metadata);
      expect(t.initialState().hardState).toEqual(hs(4, 8));
    };
    check(s);
    const r = await kind.reopen(s);
    check(r);
    // One past the end, with no entries: the log is empty after it.
    await r.persist({ snapshot: snap(30, 5), entries: [], hardState: hs(5, 30) });
    expect([r.firstIndex(), r.lastIndex(), r.term(30)]).toEqual([31, 30, 5]);
    // An older snapshot than ours is already covered and changes nothing.
    await r.persist({ snapshot: snap(20, 5), entries: [], hardState: hs(5, 30) });
    const after = stateOf(r);
    expect(after.snapshot.metadata.index).toBe(30);
    expect(stateOf(await kind.reopen(r))).toEqual(after);
  });

  it("refuses a batch that breaks the log, changes nothing, and keeps working", async () => {
    const s = await kind.create();
    await s.persist({ entries: entries(1, 5, 2), hardState: hs(2, 3) });
    const before = stateOf(s);
    const bad: [string, PersistBatch][] = [
      ["a gap after the last index", { entries: entries(7, 8, 2) }],
      ["entries out of order", { entries: [entry(6, 2), entry(8, 2)] }],
      ["a term lower than the entry before", { entries: entries(6, 6, 1) }],
      ["a commit past the last index", { entries: [], hardState: hs(2, 6) }],
      ["a snapshot past the commit", { snapshot: snap(9, 3), entries: [], hardState: hs(3, 4) }],
    ];
    for (const [what, batch] of bad) {
      await expect(s.persist(batch), what).rejects.toThrow(/invariant/);
      expect(stateOf(s), what).toEqual(before);
    }
    await s.persist({ entries: entries(6, 6, 2), hardState: hs(2, 6) });
    expect(s.lastIndex()).toBe(6);
    expect(stateOf(await kind.reopen(s)).lastIndex).toBe(6);
  });

  it("refuses a persist started before the previous one resolved", async () => {
    const s = await kind.create();
    const first = s.persist({ entries: entries(1, 1, 1), hardState: hs(1, 0) });
    await expect(s.persist({ entries: entries(2, 2, 1) })).rejects.toThrow(/before the previous persist resolved/);
    await first;
    expect(s.lastIndex()).toBe(1);
  });

  it("runs a compaction asked for during a persist after that persist", async () => {
    const s = await kind.create();
    const persisted = s.persist({ entries: entries(1, 10, 1), hardState: hs(1, 8) });
    const compacted = s.compact(5, cs, new Uint8Array([1]));
    await persisted;
    expect((await compacted).metadata.index).toBe(5);
    expect([s.firstIndex(), s.lastIndex()]).toEqual([6, 10]);
  });

  it("refuses writes once closed", async () => {
    const s = await kind.create();
    await s.close();
    open.delete(s);
    await expect(s.persist({ entries: entries(1, 1, 1) })).rejects.toThrow(/closed/);
  });

  it("matches MemoryStorage over random write streams, across reopens", async () => {
    for (let seed = 1; seed <= 12; seed++) {
      const workload = new StorageWorkload(seed);
      let s = await kind.create();
      for (let step = 1; step <= 150; step++) {
        await carryOut(s, workload.next());
        expect(stateOf(s), `seed ${seed} step ${step}`).toEqual(stateOf(workload.model));
        if (step % 50 === 0) {
          s = await kind.reopen(s);
          workload.model.load(whatTheDiskKeeps(workload.model.stored()));
          expect(stateOf(s), `seed ${seed} after reopen at step ${step}`).toEqual(stateOf(workload.model));
        }
      }
    }
  });
});

// ---------------------------------------------------- what is on disk

const packr = new Packr({ useRecords: false });
const pack = (v: unknown): Uint8Array => packr.pack(v);
const eKey = (i: number) => `e/${i.toString(16).padStart(16, "0")}`;
const rawEntry = (index: number, term: number) => pack({ term, index, type: 0, data: new Uint8Array([index]) });
const rawSnapshot = (index: number, term: number) => pack({ metadata: { index, term, confState: cs }, data: new Uint8Array([7]) });
const rawHardState = (term: number, commit: number) => pack({ term, vote: "", commit });

async function withRawDb<T>(dir: string, use: (db: Level<string, Uint8Array>) => Promise<T>): Promise<T> {
  const db = new Level<string, Uint8Array>(dir, { keyEncoding: "utf8", valueEncoding: "view" });
  await db.open();
  try {
    return await use(db);
  } finally {
    await db.close();
  }
}

async function writeRaw(dir: string, records: [string, Uint8Array][]): Promise<void> {
  await withRawDb(dir, (db) => db.batch(records.map(([key, value]) => ({ type: "put" as const, key, value }))));
}

async function readRaw(dir: string): Promise<Map<string, Uint8Array>> {
  return withRawDb(dir, async (db) => new Map(await db.iterator().all()));
}

describe("LevelStorage on disk", () => {
  it("bootstraps founding members byte for byte identically", async () => {
    const dirs = [await tmp.make("convene-a-"), await tmp.make("convene-b-")];
    for (const dir of dirs) await (await LevelStorage.open(dir, { bootstrapVoters: ["n1", "n2", "n3"] })).close();
    const [a, b] = [await readRaw(dirs[0]!), await readRaw(dirs[1]!)];
    // The bootstrap is one persist, so one run under the key of its first entry.
    expect([...a.keys()]).toEqual([eKey(1), "m/hardstate"]);
    expect(b).toEqual(a);
    expect(packr.unpack(a.get("m/hardstate")!)).toEqual({ term: 1, vote: "", commit: 3 });
  });

  it("bootstraps only an empty database", async () => {
    const dir = await tmp.make("convene-storage-");
    const s = await LevelStorage.open(dir, { bootstrapVoters: ["n1", "n2", "n3"] });
    await s.persist({ entries: entries(4, 5, 2), hardState: hs(2, 4) });
    await s.compact(4, cs, new Uint8Array());
    await s.close();
    const r = await LevelStorage.open(dir, { bootstrapVoters: ["n1", "n2", "n3"] });
    open.add(r);
    expect([r.firstIndex(), r.lastIndex(), r.initialState().hardState.commit]).toEqual([5, 5, 4]);
  });

  it("keeps exactly the keys of the log after replacing, compacting and restoring", async () => {
    const dir = await tmp.make("convene-storage-");
    const s = await LevelStorage.open(dir);
    await s.persist({ entries: entries(1, 10, 1), hardState: hs(1, 4) });
    await s.persist({ entries: entries(7, 8, 2), hardState: hs(2, 4) });
    await s.close();
    // Run 1..10, cut by the conflicting 7..8 of term 2: 1..6 rewritten, 7..8 a new run.
    expect([...(await readRaw(dir)).keys()]).toEqual([eKey(1), eKey(7), "m/hardstate"]);
    const r = await LevelStorage.open(dir);
    await r.compact(3, cs, new Uint8Array([1]));
    await r.close();
    // Compaction inside run 1..6: what survives (4..6) is rewritten under its first index.
    expect([...(await readRaw(dir)).keys()]).toEqual([eKey(4), eKey(7), "m/hardstate", "m/snapshot"]);
    const q = await LevelStorage.open(dir);
    expect([q.firstIndex(), q.lastIndex(), q.term(6), q.term(7)]).toEqual([4, 8, 1, 2]);
    await q.persist({ snapshot: snap(6, 3), entries: entries(7, 7, 3), hardState: hs(3, 6) });
    await q.close();
    const raw = await readRaw(dir);
    expect([...raw.keys()]).toEqual([eKey(7), "m/hardstate", "m/snapshot"]);
    expect(packr.unpack(raw.get(eKey(7))!)).toEqual([{ ...entry(7, 3), data: Buffer.from(entry(7, 3).data) }]);
  });

  it("writes a compaction's file ahead of the write queue; a leader's snapshot installed meanwhile wins", async () => {
    const dir = await tmp.make("convene-storage-");
    const s = await LevelStorage.open(dir);
    await s.persist({ entries: entries(1, 10, 1), hardState: hs(1, 8) });
    const compaction = s.compact(5, cs, new Uint8Array(64_000_000).fill(7));
    // Queued while the compaction's file is being written, and not behind it;
    // its cleanup of older files must leave the file being written alone.
    await s.persist({ snapshot: snap(9, 1), entries: [], hardState: hs(1, 9) });
    expect((await compaction).metadata.index).toBe(9);
    await s.close();
    const r = await LevelStorage.open(dir);
    open.add(r);
    expect([r.snapshot().metadata.index, r.firstIndex(), r.lastIndex()]).toEqual([9, 10, 9]);
    expect(readdirSync(join(dir, "snapshots"))).toHaveLength(1);
  });

  it("keeps snapshot data in one checked file beside the log, and only the latest", async () => {
    const dir = await tmp.make("convene-storage-");
    const s = await LevelStorage.open(dir);
    await s.persist({ entries: entries(1, 10, 1), hardState: hs(1, 8) });
    const big = new Uint8Array(300_000).map((_, i) => i % 251);
    await s.compact(4, cs, big);
    await s.compact(8, cs, big.subarray(1));
    await s.close();
    const files = readdirSync(join(dir, "snapshots"));
    expect(files).toEqual([`${"1".padStart(16, "0")}-${"8".padStart(16, "0")}.snap`]);
    // LevelDB holds only the reference.
    expect((await readRaw(dir)).get("m/snapshot")!.length).toBeLessThan(200);
    const r = await LevelStorage.open(dir);
    expect([...r.snapshot().data]).toEqual([...big.subarray(1)]);
    await r.close();
    // A leftover from a crash between the file and the batch is removed at open.
    writeFileSync(join(dir, "snapshots", `${"2".padStart(16, "0")}-${"9".padStart(16, "0")}.snap`), "orphan");
    writeFileSync(join(dir, "snapshots", "x.snap.tmp"), "half");
    const q = await LevelStorage.open(dir);
    expect(q.snapshot().metadata.index).toBe(8);
    expect(readdirSync(join(dir, "snapshots"))).toEqual(files);
    await q.close();
    // A file that is not what was written is refused, naming it.
    const path = join(dir, "snapshots", files[0]!);
    const bytes = readFileSync(path);
    bytes[1000] ^= 0xff;
    writeFileSync(path, bytes);
    await expect(LevelStorage.open(dir)).rejects.toThrow(/snapshot file .*\.snap does not match its checksum/);
    rmSync(path);
    await expect(LevelStorage.open(dir)).rejects.toThrow(/snapshot file .*\.snap cannot be read/);
  });

  it("reads a database written by hand in the documented layout", async () => {
    const dir = await tmp.make("convene-storage-");
    await writeRaw(dir, [[eKey(6), rawEntry(6, 2)], [eKey(7), rawEntry(7, 3)], ["m/snapshot", rawSnapshot(5, 2)], ["m/hardstate", rawHardState(3, 6)]]);
    const s = await LevelStorage.open(dir);
    open.add(s);
    expect(stateOf(s)).toMatchObject({ firstIndex: 6, lastIndex: 7, snapshotTerm: 2, initialState: { hardState: hs(3, 6, "") } });
    expect(s.entries(6, 8, Infinity).map((e) => [e.index, e.term, [...e.data]])).toEqual([[6, 2, [6]], [7, 3, [7]]]);
  });

  const corrupt: [string, [string, Uint8Array][], RegExp][] = [
    ["a gap in the log", [[eKey(1), rawEntry(1, 1)], [eKey(2), rawEntry(2, 1)], [eKey(4), rawEntry(4, 1)]],
      /not contiguous after the snapshot index 0: entry 4 follows 2, entries 3\.\.3 are missing/],
    ["a log starting after the entry right after the snapshot", [["m/snapshot", rawSnapshot(5, 1)], [eKey(7), rawEntry(7, 1)], ["m/hardstate", rawHardState(1, 5)]],
      /not contiguous after the snapshot index 5: entry 7 follows 5/],
    ["an entry left at or before the snapshot", [["m/snapshot", rawSnapshot(5, 1)], [eKey(5), rawEntry(5, 1)], [eKey(6), rawEntry(6, 1)], ["m/hardstate", rawHardState(1, 5)]],
      /log entry 5 is at or before the snapshot index 5/],
    ["an entry under another index's key", [[eKey(1), rawEntry(1, 1)], [eKey(2), rawEntry(3, 1)]],
      /key e\/0000000000000002 \(index 2\) holds the entry of index 3/],
    ["a commit past the last index", [[eKey(1), rawEntry(1, 1)], [eKey(2), rawEntry(2, 1)], ["m/hardstate", rawHardState(1, 5)]],
      /hard state commit 5 is past the last index 2/],
    ["a commit before the snapshot index", [["m/snapshot", rawSnapshot(5, 1)], [eKey(6), rawEntry(6, 1)], ["m/hardstate", rawHardState(1, 3)]],
      /hard state commit 3 is before the snapshot index 5/],
    ["a snapshot term above the next entry's", [["m/snapshot", rawSnapshot(5, 3)], [eKey(6), rawEntry(6, 2)], ["m/hardstate", rawHardState(3, 5)]],
      /snapshot \(index 5, term 3\) contradicts the log: the next entry 6 has the lower term 2/],
    ["log terms going back", [[eKey(1), rawEntry(1, 2)], [eKey(2), rawEntry(2, 1)]],
      /log terms go back: entry 2 has term 1 after term 2 of entry 1/],
    ["a truncated value", [[eKey(1), rawEntry(1, 1).subarray(0, 5)]],
      /value of key e\/0000000000000001 cannot be decoded/],
    ["a value with trailing bytes", [["m/hardstate", new Uint8Array([...rawHardState(1, 0), 0x01])]],
      /value of key m\/hardstate cannot be decoded/],
    ["a value that is not a map", [["m/snapshot", pack("snapshot")]], /value of key m\/snapshot is not a map/],
    ["a reserved msgpack byte", [["m/hardstate", new Uint8Array([0xc1])]], /value of key m\/hardstate/],
    ["an entry whose data is not binary", [[eKey(1), pack({ term: 1, index: 1, type: 0, data: "x" })]],
      /value of key e\/0000000000000001 is malformed: data is not binary/],
    ["a hard state without a vote", [["m/hardstate", pack({ term: 1, commit: 0 })]], /m\/hardstate is malformed: vote is not a string/],
    ["a snapshot without a membership", [["m/snapshot", pack({ metadata: { index: 1, term: 1 }, data: new Uint8Array() })]],
      /m\/snapshot is malformed: metadata.confState/],
    ["an unknown key", [["m/applied", pack(3)]], /unexpected key "m\/applied"/],
    ["an entry key of the wrong width", [["e/12", rawEntry(18, 1)]], /unexpected key "e\/12"/],
  ];

  it.each(corrupt)("refuses to start from %s, and releases the database", async (_what, records, message) => {
    const dir = await tmp.make("convene-corrupt-");
    await writeRaw(dir, records);
    const opening = LevelStorage.open(dir);
    await expect(opening).rejects.toThrow(CorruptStateError);
    await expect(opening).rejects.toThrow(message);
    // The lock is released: the operator can inspect or repair the database.
    await readRaw(dir);
  });
});

// ------------------------------------------------------- crash consistency

const childScript = fileURLToPath(new URL("./support/storage-crash-child.ts", import.meta.url));

/**
 * Runs the writer child until it acknowledged `acks` writes, then SIGKILLs
 * it `delayMs` later, while it is busy with later writes (killed at once, it
 * is still between writes). Returns the last acknowledged write.
 */
async function writeUntilKilled(dir: string, seed: number, acks: number, delayMs: number): Promise<number> {
  const child = spawn(process.execPath, ["--import", "tsx", childScript, dir, String(seed)], {
    cwd: fileURLToPath(new URL("..", import.meta.url)),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  let killed = false;
  child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
  child.stdout.on("data", (chunk: Buffer) => {
    out += chunk.toString();
    if (!killed && out.split("\n").length > acks) {
      killed = true;
      setTimeout(() => child.kill("SIGKILL"), delayMs);
    }
  });
  const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on("close", (_code, sig) => resolve(sig)));
  if (signal !== "SIGKILL") throw new Error(`the writer was not killed mid-stream (signal ${signal}): ${err}`);
  // Everything it wrote to the pipe before dying has been read by now.
  const lines = out.split("\n").filter((l) => l.startsWith("ack "));
  lines.forEach((l, i) => expect(l).toBe(`ack ${i + 1}`));
  return lines.length;
}

describe("LevelStorage crash consistency", () => {
  it.each([
    [11, 40, 0],
    [12, 150, 1],
    [13, 300, 2],
    [14, 100, 3],
    [15, 200, 5],
    [16, 60, 8],
  ])("keeps every acknowledged write when killed (seed %i, %i writes and %i ms in)", async (seed, acks, delayMs) => {
    const dir = await tmp.make("convene-crash-");
    const acknowledged = await writeUntilKilled(dir, seed, acks, delayMs);
    expect(acknowledged).toBeGreaterThanOrEqual(acks);
    // Opening runs the startup checks: a torn state would be refused here.
    const s = await LevelStorage.open(dir);
    open.add(s);
    dirOf.set(s, dir);
    const found = stateOf(s);
    // The state after the last acknowledged write, or after the one in flight.
    const workload = new StorageWorkload(seed);
    for (let i = 0; i < acknowledged; i++) workload.next();
    const afterAcked = stateOf(diskImage(workload.model));
    workload.next();
    const afterInFlight = stateOf(diskImage(workload.model));
    expect([afterAcked, afterInFlight]).toContainEqual(found);
    // And the member can go on writing from there.
    await s.persist({ entries: [entry(s.lastIndex() + 1, 1000)], hardState: hs(1000, s.initialState().hardState.commit) });
    expect(stateOf(await levelKind.reopen(s)).lastIndex).toBe(found.lastIndex + 1);
  });
});
