/**
 * A member killed while the others take a snapshot catches up from the
 * entries they keep behind it (catchUpEntries), not by decoding the whole
 * state again: the real RaftDriver on virtual time, as in driver-pause.
 */
import { describe, expect, it } from "vitest";
import { StateRole } from "../src/raft/index.js";
import { GROUP_ELECTION_MS as ELECTION_MS, faultFreeGroup } from "./sim/fault-free-group.js";
import { encodeCommand } from "./sim/kv-machine.js";
import { TICK_MS } from "./sim/sim-member.js";

/** n3 is killed, 60 writes later (snapshots every 20) it starts again; what it had to restore. */
async function restartBehindSnapshots(catchUpEntries: number, seed = 5) {
  const { members, setup, run } = await faultFreeGroup({ seed, snapshotEvery: 20, catchUpEntries });
  await run(5 * ELECTION_MS);
  const write = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const leader = members.find((m) => m.role === StateRole.Leader)!;
      const done = leader.driver!.propose(encodeCommand({ opId: `w${i}`, via: leader.id, op: { kind: "write", key: `k${i}`, value: `v${i}` } }));
      await run(2 * TICK_MS);
      await done;
    }
  };
  await write(25);
  const victim = members.find((m) => m.role !== StateRole.Leader)!;
  victim.crash();
  await write(60);
  const leader = members.find((m) => m.role === StateRole.Leader)!;
  const leaderSnapshot = leader.driver!.status().snapshotIndex;
  const victimLast = victim.disk.platter.lastIndex();
  await victim.start(setup);
  await run(5 * ELECTION_MS);
  return {
    leaderSnapshot,
    victimLast,
    restored: victim.driver!.stats.snapshotsRestored,
    caughtUp: victim.driver!.status().applied === leader.driver!.status().applied,
    same: Buffer.from(victim.machine!.kv.snapshot()).equals(Buffer.from(leader.machine!.kv.snapshot())),
  };
}

describe("a member restarted behind the others' snapshot (the real driver on virtual time)", () => {
  it("is sent the entries it missed when they are within the catch-up entries", async () => {
    const r = await restartBehindSnapshots(100);
    expect(r.leaderSnapshot).toBeGreaterThan(r.victimLast);
    expect(r.restored).toBe(0);
    expect(r.caughtUp && r.same).toBe(true);
  });

  it("is sent the snapshot when none are kept", async () => {
    const r = await restartBehindSnapshots(0);
    expect(r.leaderSnapshot).toBeGreaterThan(r.victimLast);
    expect(r.restored).toBe(1);
    expect(r.caughtUp && r.same).toBe(true);
  });
});
