/**
 * A member whose process stood still (SIGSTOP, a long GC) must not act on
 * time it did not see pass: the real RaftDriver, on virtual time, with a
 * leader in lease mode paused for many election timeouts while the others
 * elect a new leader and commit a write. Woken up and still cut off, the
 * old leader must not serve a lease read of the old value.
 */
import { describe, expect, it } from "vitest";
import { ReadOnlyOption, StateRole } from "../src/raft/index.js";
import { GROUP_ELECTION_MS as ELECTION_MS, GROUP_IDS as IDS, faultFreeGroup } from "./sim/fault-free-group.js";
import { encodeCommand } from "./sim/kv-machine.js";
import { type SimMember, TICK_MS } from "./sim/sim-member.js";

async function cluster(seed: number) {
  const { world, network, members, run } = await faultFreeGroup({ seed, config: { readOnlyOption: ReadOnlyOption.LeaseBased } });
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
