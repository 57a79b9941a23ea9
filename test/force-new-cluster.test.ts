/**
 * --force-new-cluster on a member's real disk (LevelStorage): the survivor
 * of a lost majority becomes the only voter and keeps every entry it holds,
 * those past the commit index it knew included (they may have been
 * acknowledged); a driver started on the result leads alone and applies all
 * of them.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { KvStateMachine, encodeKvCommand } from "../src/member/kv-state-machine.js";
import { decodeConfChange, encodeConfChange } from "../src/raft/conf-change.js";
import { defaultConfig } from "../src/raft/config.js";
import { ConfigError } from "../src/raft/errors.js";
import { SeededRandom } from "../src/raft/random.js";
import { ConfChangeType, type Entry, EntryType } from "../src/raft/types.js";
import { RaftDriver } from "../src/raft-runtime/driver.js";
import { forceNewCluster } from "../src/raft-runtime/force-new-cluster.js";
import { LevelStorage } from "../src/raft-runtime/level-storage.js";
import { MemoryHub, MemoryTransport } from "../src/raft-runtime/memory-transport.js";

const dirs: string[] = [];
const open: ({ close(): Promise<void> } | RaftDriver)[] = [];
afterEach(async () => {
  for (const o of open.splice(0)) await (o instanceof RaftDriver ? o.stop() : o.close());
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "convene-force-"));
  dirs.push(d);
  return d;
}

const put = (index: number, term: number, key: string): Entry => ({ term, index, type: EntryType.Normal, data: encodeKvCommand({ op: "put", key, value: `v${index}` }) });
const change = (index: number, term: number, type: ConfChangeType, nodeId: string): Entry => ({ term, index, type: EntryType.ConfChange, data: encodeConfChange({ type, nodeId }) });

/** A member's disk as a kill -9 leaves it: the founding entries, writes of term 2, a learner added, and a commit index that lags its log. */
async function survivorDisk(dir: string, self = "n1"): Promise<void> {
  const storage = await LevelStorage.open(dir, { bootstrapVoters: ["n1", "n2", "n3"] });
  const entries = [put(4, 2, "a"), put(5, 2, "b"), put(6, 2, "c"), change(7, 2, ConfChangeType.AddLearner, "n4"), put(8, 2, "d"), put(9, 2, "e")];
  if (self === "n4") entries.push(put(10, 2, "f"));
  await storage.persist({ entries, hardState: { term: 2, vote: "n2", commit: 6 } });
  await storage.close();
}

describe("forceNewCluster", () => {
  it("appends the removal of every other member, keeps the whole log and commits it", async () => {
    const dir = tempDir();
    await survivorDisk(dir);
    const storage = await LevelStorage.open(dir);
    const forced = await forceNewCluster(storage, "n1");
    expect(forced).toEqual({ removed: ["n2", "n3", "n4"], commitBefore: 6, lastIndexBefore: 9, lastIndex: 12 });
    await storage.close();

    const reopened = await LevelStorage.open(dir);
    open.push(reopened);
    expect(reopened.initialState().hardState).toEqual({ term: 2, vote: "n2", commit: 12 });
    const added = reopened.entries(10, 13, Infinity);
    expect(added.map((e) => [e.term, e.type, decodeConfChange(e.data)])).toEqual([
      [2, EntryType.ConfChange, { type: ConfChangeType.RemoveNode, nodeId: "n2" }],
      [2, EntryType.ConfChange, { type: ConfChangeType.RemoveNode, nodeId: "n3" }],
      [2, EntryType.ConfChange, { type: ConfChangeType.RemoveNode, nodeId: "n4" }],
    ]);
  });

  it("a driver on the forced disk leads alone, has applied every entry it held, and commits new ones", async () => {
    const dir = tempDir();
    await survivorDisk(dir);
    const storage = await LevelStorage.open(dir);
    await forceNewCluster(storage, "n1");
    const kv = new KvStateMachine();
    const driver = await RaftDriver.start({
      config: { ...defaultConfig("n1", new SeededRandom(7)), electionTick: 10, heartbeatTick: 1 },
      tickMs: 5,
      storage,
      transport: new MemoryTransport({ selfId: "n1", hub: new MemoryHub(), peers: ["n2", "n3"] }),
      stateMachine: kv,
      peers: new Map([["n1", "n1.test:7000"], ["n2", "n2.test:7000"], ["n3", "n3.test:7000"]]),
      snapshotEvery: 1_000,
      requestTimeoutMs: 2_000,
    });
    open.push(driver);
    await expect.poll(() => driver.isLeader(), { timeout: 5_000 }).toBe(true);
    expect(driver.status().confState).toEqual({ voters: ["n1"], learners: [] });
    // d and e were past the commit index n1 knew: kept.
    for (const [key, value] of [["a", "v4"], ["c", "v6"], ["d", "v8"], ["e", "v9"]]) expect(kv.get(key!)).toBe(value);
    await driver.propose(encodeKvCommand({ op: "put", key: "after", value: "1" }));
    expect(kv.get("after")).toBe("1");
  });

  it("makes a surviving learner a voter first", async () => {
    const dir = tempDir();
    await survivorDisk(dir, "n4");
    const storage = await LevelStorage.open(dir);
    open.push(storage);
    const forced = await forceNewCluster(storage, "n4");
    expect(forced.removed).toEqual(["n1", "n2", "n3"]);
    const added = storage.entries(forced.lastIndexBefore + 1, forced.lastIndex + 1, Infinity).map((e) => decodeConfChange(e.data));
    expect(added[0]).toEqual({ type: ConfChangeType.AddVoter, nodeId: "n4" });
  });

  it("refuses an empty disk, writing nothing", async () => {
    const storage = await LevelStorage.open(tempDir());
    open.push(storage);
    await expect(forceNewCluster(storage, "n1")).rejects.toThrow(ConfigError);
    expect(storage.lastIndex()).toBe(0);
  });
});
