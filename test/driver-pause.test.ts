/**
 * A member whose process stood still (SIGSTOP, a long GC) must not act on
 * time it did not see pass: the real RaftDriver, on virtual time, with a
 * leader in lease mode paused for many election timeouts while the others
 * elect a new leader and commit a write. Woken up and still cut off, the
 * old leader must not serve a lease read of the old value.
 */
import { describe, expect, it } from "vitest";
import { ReadOnlyOption, SeededRandom, StateRole, defaultConfig } from "../src/raft/index.js";
import { MemoryDurableStorage } from "../src/raft-runtime/memory-durable-storage.js";
import { VirtualScheduler, flushMicrotasks } from "../src/time/virtual-scheduler.js";
import { encodeCommand } from "./sim/kv-machine.js";
import { NO_FAULTS, SimNetwork } from "./sim/network.js";
import { SimDisk } from "./sim/sim-disk.js";
import { type MemberSetup, SimMember, TICK_MS } from "./sim/sim-member.js";

const IDS = ["n1", "n2", "n3"];
const ELECTION_MS = 10 * TICK_MS;

async function cluster(seed: number) {
  const world = new VirtualScheduler(0);
  const rng = new SeededRandom(seed);
  const network = new SimNetwork(world, rng.fork());
  network.faults = NO_FAULTS;
  const members = IDS.map((id) => new SimMember(id, new SimDisk(id, MemoryDurableStorage.bootstrap(IDS), rng.fork(), { persisted: () => undefined })));
  const setup: MemberSetup = {
    world,
    network,
    config: (id) => ({ ...defaultConfig(id, rng.fork()), electionTick: 10, heartbeatTick: 1, readOnlyOption: ReadOnlyOption.LeaseBased }),
    peers: () => new Map(IDS.map((id) => [id, id])),
    snapshotEvery: 1_000_000,
    catchUpEntries: 0,
    requestTimeoutMs: 20 * ELECTION_MS,
    onApplied: () => undefined,
    onFatal: (id, err) => {
      throw new Error(`${id}: ${String(err)}`);
    },
    onSnapshot: () => undefined,
  };
  for (const m of members) await m.start(setup);
  const run = async (ms: number) => {
    await world.advance(ms);
    await flushMicrotasks();
  };
  const leader = () => members.find((m) => m.role === StateRole.Leader && !m.clock?.isPaused);
  const write = async (via: SimMember, key: string, value: string) => {
    const done = via.driver!.propose(encodeCommand({ opId: `${key}=${value}`, via: via.id, op: { kind: "write", key, value } }));
    await run(5 * TICK_MS);
    await done;
  };
  return { world, network, members, run, leader, write };
}

describe("a paused member (the real driver on virtual time)", () => {
  it("a leader paused past its lease and cut off serves no lease read of the value it had", async () => {
    const c = await cluster(3);
    await c.run(5 * ELECTION_MS);
    const old = c.leader()!;
    expect(old).toBeDefined();
    await c.write(old, "k", "v1");
    await c.run(5 * TICK_MS); // heartbeats acknowledged: the lease holds
    // Cut off (without noticing) and stopped for ten election timeouts.
    c.network.partition([old.id], IDS.filter((id) => id !== old.id));
    old.pause(c.world, 10 * ELECTION_MS);
    await c.run(6 * ELECTION_MS);
    const next = c.leader()!;
    expect(next.id).not.toBe(old.id);
    await c.write(next, "k", "v2");
    // A client that still believes the old leader asks it to read; it runs when the process wakes up, still cut off.
    expect(old.clock!.isPaused).toBe(true);
    const read = old.driver!.read(() => old.machine!.kv.read("k")).then(
      (value) => `read ${value}`,
      (err: Error) => `refused: ${err.name}`,
    );
    await c.run(30 * ELECTION_MS);
    expect(old.clock!.isPaused).toBe(false);
    expect(await read).not.toBe("read v1");
  });
});
