/**
 * The Raft driver (RaftDriver) over its in-memory twins: MemoryTransport on a
 * MemoryHub and MemoryDurableStorage. Real timers, small tick.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { KvStateMachine, encodeKvCommand } from "../src/member/kv-state-machine.js";
import { defaultConfig } from "../src/raft/config.js";
import { NotLeaderError, ProposalDroppedError, RaftTimeoutError } from "../src/raft/errors.js";
import { MemoryDurableStorage } from "../src/raft-runtime/memory-durable-storage.js";
import { MemoryHub, MemoryTransport } from "../src/raft-runtime/memory-transport.js";
import { RaftDriver } from "../src/raft-runtime/driver.js";
import { SeededRandom } from "../src/raft/random.js";

const ids = ["n1", "n2", "n3"];
const peers = new Map(ids.map((id) => [id, `${id}.test:7000`]));

interface Started {
  hub: MemoryHub;
  nodes: Map<string, RaftDriver>;
  machines: Map<string, KvStateMachine>;
}

let running: RaftDriver[] = [];
afterEach(async () => {
  await Promise.all(running.map((n) => n.stop()));
  running = [];
});

/** Three members (`members` for others), each ticking every 5 ms: an election timeout of 50 ms, which a stall of this process can outlast. */
async function startGroup(options: { snapshotEvery?: number; snapshotOffset?: (id: string) => number; requestTimeoutMs?: number; members?: readonly string[] } = {}): Promise<Started> {
  const group = options.members ?? ids;
  const hub = new MemoryHub();
  const nodes = new Map<string, RaftDriver>();
  const machines = new Map<string, KvStateMachine>();
  for (const [i, id] of group.entries()) {
    const kv = new KvStateMachine();
    const node = await RaftDriver.start({
      config: { ...defaultConfig(id, new SeededRandom(i + 1)), electionTick: 10, heartbeatTick: 1 },
      tickMs: 5,
      storage: MemoryDurableStorage.bootstrap(group),
      transport: new MemoryTransport({ selfId: id, hub, peers: group.filter((p) => p !== id) }),
      stateMachine: kv,
      peers,
      snapshotEvery: options.snapshotEvery ?? 1000,
      ...(options.snapshotOffset ? { snapshotOffset: options.snapshotOffset(id) } : {}),
      requestTimeoutMs: options.requestTimeoutMs ?? 2000,
    });
    nodes.set(id, node);
    machines.set(id, kv);
    running.push(node);
  }
  return { hub, nodes, machines };
}

function leaderOf(g: Started, timeoutMs = 5000): Promise<RaftDriver> {
  return vi.waitFor(
    () => {
      const leader = [...g.nodes.values()].find((n) => n.isLeader());
      if (!leader) throw new Error(`no leader within ${timeoutMs} ms`);
      return leader;
    },
    { timeout: timeoutMs, interval: 5 },
  );
}

const put = (key: string, value: string) => encodeKvCommand({ op: "put", key, value });

describe("RaftDriver driver", () => {
  it("elects a leader, commits proposals and answers with the state machine's result", async () => {
    const g = await startGroup();
    const leader = await leaderOf(g);
    const result = await leader.propose(put("a", "1"));
    expect(result).toMatchObject({ ok: true, value: "1" });
    await expect(leader.read(() => g.machines.get(leader.id)!.get("a"))).resolves.toBe("1");
  });

  it("a follower refuses proposals with NotLeaderError naming the leader and its address", async () => {
    const g = await startGroup();
    const leader = await leaderOf(g);
    await leader.propose(put("a", "1"));
    const follower = [...g.nodes.values()].find((n) => !n.isLeader())!;
    const err = await follower.propose(put("b", "2")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotLeaderError);
    expect((err as NotLeaderError).leaderId).toBe(leader.id);
    expect((err as NotLeaderError).leaderAddress).toBe(peers.get(leader.id));
  });

  it("a follower serves linearizable reads through the leader's read index", async () => {
    const g = await startGroup();
    const leader = await leaderOf(g);
    await leader.propose(put("k", "v1"));
    const follower = [...g.nodes.values()].find((n) => !n.isLeader())!;
    await expect(follower.read(() => g.machines.get(follower.id)!.get("k"))).resolves.toBe("v1");
  });

  it("group commit: proposals made together share one append and one write", async () => {
    const g = await startGroup();
    const leader = await leaderOf(g);
    const storage = (leader as unknown as { opts: { storage: MemoryDurableStorage } }).opts.storage;
    let writes = 0;
    const persist = storage.persist.bind(storage);
    storage.persist = (batch) => {
      writes++;
      return persist(batch);
    };
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => leader.propose(put(`k${i}`, `${i}`))));
    const indexes = results.map((r) => (r as { index: number }).index);
    expect(new Set(indexes).size).toBe(500);
    // 500 proposals made in one turn of the event loop: one write for the
    // entries, plus a few for hard-state (commit) updates.
    expect(writes).toBeLessThan(10);
  });

  it("snapshots and compacts the log as it applies, and keeps serving", async () => {
    const g = await startGroup({ snapshotEvery: 50 });
    const leader = await leaderOf(g);
    for (let i = 0; i < 4; i++) await Promise.all(Array.from({ length: 60 }, (_, j) => leader.propose(put(`k${i}-${j}`, "x"))));
    expect(leader.status().snapshotIndex).toBeGreaterThan(0);
    await expect(leader.read(() => g.machines.get(leader.id)!.size())).resolves.toBe(240);
  });

  it("members with different snapshot offsets snapshot at different indexes, each the offset after the other, for good", async () => {
    const offsets: Record<string, number> = { n1: 0, n2: 10, n3: 20 };
    const g = await startGroup({ snapshotEvery: 30, snapshotOffset: (id) => offsets[id]! });
    const taken = new Map<string, number[]>(ids.map((id) => [id, []]));
    for (const [id, node] of g.nodes) node.on("snapshot", (s) => taken.get(id)!.push(s.index));
    const leader = await leaderOf(g);
    for (let i = 0; i < 140; i++) await leader.propose(put(`k${i}`, "x"));
    await vi.waitFor(() => expect([...g.nodes.values()].every((n) => n.status().applied === leader.status().applied)).toBe(true));
    await vi.waitFor(() => expect(ids.every((id) => taken.get(id)!.length >= 3)).toBe(true));
    for (const id of ids) {
      const [first, ...later] = taken.get(id)!;
      // The first waits snapshotEvery plus the offset.
      expect(first).toBeGreaterThanOrEqual(30 + offsets[id]!);
      later.forEach((index, k) => expect(index - (k === 0 ? first! : later[k - 1]!)).toBeGreaterThanOrEqual(30));
    }
    // Later ones follow each member's own last: no two members ever snapshot at the same index.
    const all = ids.flatMap((id) => taken.get(id)!);
    expect(new Set(all).size).toBe(all.length);
  });

  it("a large state is snapshotted again only after a quarter of its size in new entries", async () => {
    // One member: it proposes 220 entries and must stay leader throughout,
    // which in a group a stall of this process longer than the election
    // timeout would not let it (the snapshot rule is each member's own).
    const g = await startGroup({ snapshotEvery: 10, members: ["n1"] });
    const leader = await leaderOf(g);
    const big = "v".repeat(2_000);
    // 100 values of 2 kB: a snapshot every 10 entries at first; once the
    // state passes 80 kB, each next one waits for a quarter of it (up to 25 entries).
    const snapshotAt: number[] = [];
    for (let i = 0; i < 100; i++) {
      await leader.propose(put(`big-${i}`, big));
      const s = leader.status().snapshotIndex;
      if (s !== (snapshotAt.at(-1) ?? 0)) snapshotAt.push(s);
    }
    expect(snapshotAt.length).toBeGreaterThan(1);
    // Small entries would snapshot every 10; these grow the gaps with the state.
    const gaps = snapshotAt.slice(1).map((s, i) => s - snapshotAt[i]!);
    expect(gaps.every((gap) => gap >= 10)).toBe(true);
    expect(gaps.at(-1)!).toBeGreaterThan(gaps[0]!);
    // 120 small entries add up to far less than a quarter of 200 kB: no new snapshot.
    const before = leader.status().snapshotIndex;
    for (let i = 0; i < 3; i++) await Promise.all(Array.from({ length: 40 }, (_, j) => leader.propose(put(`s${i}-${j}`, "x"))));
    expect(leader.status().snapshotIndex).toBe(before);
  });

  it("transfers leadership to a caught-up follower", async () => {
    const g = await startGroup();
    const leader = await leaderOf(g);
    await leader.propose(put("a", "1"));
    const target = ids.find((id) => id !== leader.id)!;
    await leader.transferLeadership(target);
    expect(g.nodes.get(target)!.isLeader() || (await leaderOf(g)).id === target).toBe(true);
  });

  it("without a quorum a proposal fails within its deadline instead of hanging", async () => {
    const g = await startGroup({ requestTimeoutMs: 300 });
    const leader = await leaderOf(g);
    await leader.propose(put("a", "1"));
    for (const other of ids) if (other !== leader.id) g.hub.partition(leader.id, other);
    const started = Date.now();
    const err = await leader.propose(put("b", "2")).catch((e: unknown) => e);
    expect(err instanceof RaftTimeoutError || err instanceof ProposalDroppedError || err instanceof NotLeaderError).toBe(true);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("membership: a learner is added, promoted once caught up, and a voter removed", async () => {
    const g = await startGroup();
    const leader = await leaderOf(g);
    await leader.propose(put("a", "1"));
    // n4 starts empty and joins.
    const kv = new KvStateMachine();
    const n4 = await RaftDriver.start({
      config: { ...defaultConfig("n4", new SeededRandom(9)), electionTick: 10, heartbeatTick: 1 },
      tickMs: 5,
      storage: new MemoryDurableStorage(),
      transport: new MemoryTransport({ selfId: "n4", hub: g.hub, peers: ids }),
      stateMachine: kv,
      peers: new Map([...peers, ["n4", "n4.test:7000"]]),
      snapshotEvery: 1000,
      requestTimeoutMs: 2000,
    });
    running.push(n4);
    await leader.addLearner("n4", "n4.test:7000");
    await vi.waitFor(() => expect(kv.get("a")).toBe("1"), { timeout: 5000, interval: 10 });
    await leader.promote("n4");
    const removed = ids.find((id) => id !== leader.id)!;
    await leader.remove(removed);
    expect([...leader.status().confState.voters].sort()).toEqual(ids.filter((id) => id !== removed).concat("n4").sort());
  });
});
