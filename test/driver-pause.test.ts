/**
 * A member whose process stood still (SIGSTOP, a long GC) must not act on
 * time it did not see pass: the real RaftDriver, on virtual time, with a
 * leader in lease mode paused for many election timeouts while the others
 * elect a new leader and commit a write. Woken up and still cut off, the
 * old leader must not serve a lease read of the old value, neither its own
 * nor one a follower forwarded to it (five members; 13 of seeds 1-40 open
 * that window; without the driver's catch-up of ticks before it steps a
 * message, seed 7 reads the old value).
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

  // A follower's read forwarded to the leader just as the leader stops lands
  // in its socket; when the process wakes it may read that message before
  // its own timer fires. The driver catches the core's clock up before it
  // steps any message: on a clock stopped at the pause the lease would still
  // look valid, and the follower (whose own election timeout has not run
  // out yet) would get an answer while a newer leader has committed since.
  it("a leader woken from a pause answers no forwarded read on the lease it had before the pause", async () => {
    const ids = ["n1", "n2", "n3", "n4", "n5"];
    let windows = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const g = await faultFreeGroup({ seed, ids, config: { readOnlyOption: ReadOnlyOption.LeaseBased } });
      await g.run(5 * ELECTION_MS);
      const leaderOf = (among: readonly SimMember[]) => among.find((m) => m.role === StateRole.Leader && !m.clock?.isPaused);
      const old = leaderOf(g.members)!;
      const write = async (via: SimMember, value: string) => {
        const done = via.driver!.propose(encodeCommand({ opId: `k=${value}`, via: via.id, op: { kind: "write", key: "k", value } }));
        await g.run(5 * TICK_MS);
        await done;
      };
      await write(old, "v1");
      await g.run(5 * TICK_MS);
      const asker = g.members.find((m) => m !== old)!;
      const rest = g.members.filter((m) => m !== old && m !== asker);
      g.network.partition([old.id, asker.id], rest.map((m) => m.id));
      old.pause(g.world, 1_000 * ELECTION_MS);
      const read = asker.driver!.read(() => asker.machine!.kv.read("k")).then(
        (value) => `read ${value}`,
        (err: Error) => `refused: ${err.name}`,
      );
      // The others elect a leader and commit v2; the asker still follows the stopped one.
      let next: SimMember | undefined;
      for (let t = 0; t < 40 && !next; t++) {
        await g.run(TICK_MS);
        next = leaderOf(rest);
      }
      if (!next) continue;
      await write(next, "v2");
      if (asker.driver!.status().lead !== old.id) continue;
      windows++;
      old.resume();
      await g.run(5 * TICK_MS);
      expect(await Promise.race([read, g.run(30 * ELECTION_MS).then(() => "pending")]), `seed ${seed}`).not.toBe("read v1");
    }
    // The window (a new leader committed, the asker not yet timed out) must have come up.
    expect(windows).toBeGreaterThan(0);
  });
});

