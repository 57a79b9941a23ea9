/**
 * Planned moves that lose nothing (issue 19), end to end: three real
 * coordinator members, meeting servers as embedded node agents whose hosts
 * log every write, operators as `convene` processes.
 *   - `convene move` hands a meeting over: the new owner starts from a
 *     final checkpoint taken after the last write, even with no periodic
 *     checkpoint since the writes;
 *   - an owner that does not answer: at the deadline the meeting moves as
 *     in a failover, with its last checkpoint;
 *   - `convene rebalance` relieves a full server a few moves at a time,
 *     each a hand-over.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AppCluster, EVENT, REASON, TestHost, type WireEvent, waitFor } from "./support/app-cluster.js";

interface RouteAnswer {
  node_id: string;
  epoch: number;
  created: boolean;
}

describe("planned moves", () => {
  const cluster = new AppCluster();

  beforeAll(async () => {
    await cluster.start();
  }, 60_000);

  afterAll(async () => {
    await cluster.close();
  }, 30_000);

  it("`convene move` hands a meeting over with a final checkpoint taken after its last write", async () => {
    const hostA = new TestHost();
    const hostB = new TestHost();
    // No periodic checkpoint in the test's time: only the hand-over can carry the writes.
    const a = await cluster.agent("move-a", hostA, { checkpointIntervalMs: 3_600_000 });
    await cluster.agent("move-b", hostB, { checkpointIntervalMs: 3_600_000 });
    const created = await cluster.call<RouteAnswer>("GetRoute", { meeting_id: "move-1", create: true, preferred_node_id: "move-a" });
    expect(created).toMatchObject({ node_id: "move-a", epoch: 1, created: true });
    await waitFor("move-a to hold move-1", () => hostA.writes.has("move-1"));
    const watch = cluster.watchEvents((await cluster.members.status("n1")).applied_index, "n3");
    for (let i = 1; i <= 5; i++) expect(hostA.write("move-1", `w${i}`)).toBe(true);

    const run = await cluster.cli(["move", "move-1", "--to", "move-b"]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^moved move-1 from move-a to move-b \(epoch 1 → 2\) with checkpoint 1 saved by move-a$/m);
    // The new owner restored exactly the writes made before the hand-over.
    await waitFor("move-b to hold move-1", () => hostB.writes.has("move-1"));
    expect(hostB.assigned.find((x) => x.meetingId === "move-1")).toEqual({ meetingId: "move-1", epoch: 2, checkpoint: "w1|w2|w3|w4|w5" });
    // The old owner accepts no more writes, and released the meeting.
    expect(hostA.write("move-1", "late")).toBe(false);
    await waitFor("move-a to release move-1", () => !a.meetings().has("move-1"));
    const moved = await waitFor("the MEETING_MOVED event", () => watch.events.find((e) => e.type === EVENT.MEETING_MOVED && e.meeting_id === "move-1"));
    expect(moved).toMatchObject({ from_node_id: "move-a", to_node_id: "move-b", epoch: 2, reason: REASON.PLANNED_MOVE, checkpoint_sequence: 1, final_checkpoint: true });
    const started = watch.events.find((e) => e.type === EVENT.MEETING_MOVE_STARTED && e.meeting_id === "move-1")!;
    expect(started).toMatchObject({ from_node_id: "move-a", to_node_id: "move-b", epoch: 1, reason: REASON.PLANNED_MOVE });
    expect(started.index).toBeLessThan(moved.index);
    watch.cancel();
  }, 60_000);

  it("refuses a move it cannot make, naming why, and changes nothing", async () => {
    const nowhere = await cluster.cli(["move", "no-such-meeting"]);
    expect(nowhere.code).toBe(1);
    expect(nowhere.stderr).toMatch(/convene move: NOT_FOUND: meeting no-such-meeting does not exist/);
    const bad = await cluster.cli(["move", "move-1", "--to", "a b"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('convene move: --to must be a node id: 1 to 64 letters, digits, ".", "_" or "-"; got "a b" (a space is not allowed)\n');
    const same = await cluster.cli(["move", "move-1", "--to", "move-b"]);
    expect(same.code).toBe(1);
    expect(same.stderr).toMatch(/FAILED_PRECONDITION: meeting move-1 is already on move-b/);
    expect(await cluster.call<RouteAnswer>("GetRoute", { meeting_id: "move-1" })).toMatchObject({ node_id: "move-b", epoch: 2 });
  }, 60_000);

  it("an owner that does not hand over in time: the meeting moves at the deadline as in a failover, with its last checkpoint", async () => {
    const hostA = new TestHost();
    const hostB = new TestHost();
    let release = (): void => undefined;
    hostA.handoverGate = new Promise<void>((resolve) => (release = resolve));
    const a = await cluster.agent("slow-a", hostA, { checkpointIntervalMs: 3_600_000 });
    await cluster.agent("slow-b", hostB, { checkpointIntervalMs: 3_600_000 });
    await cluster.call("GetRoute", { meeting_id: "slow-1", create: true, preferred_node_id: "slow-a" });
    await waitFor("slow-a to hold slow-1", () => hostA.writes.has("slow-1"));
    hostA.write("slow-1", "saved");
    expect(await a.saveNow("slow-1")).toBe(1);
    hostA.write("slow-1", "never saved");
    const watch = cluster.watchEvents((await cluster.members.status("n2")).applied_index, "n2");
    const run = await cluster.cli(["move", "slow-1", "--to", "slow-b", "--hand-over-timeout", "1500ms"]);
    expect(run.code, run.stderr).toBe(0);
    await waitFor("slow-b to hold slow-1", () => hostB.writes.has("slow-1"));
    expect(hostB.assigned.find((x) => x.meetingId === "slow-1")).toEqual({ meetingId: "slow-1", epoch: 2, checkpoint: "saved" });
    const moved = await waitFor("MEETING_MOVED", () => watch.events.find((e) => e.type === EVENT.MEETING_MOVED && e.meeting_id === "slow-1"));
    expect(moved).toMatchObject({ from_node_id: "slow-a", to_node_id: "slow-b", reason: REASON.PLANNED_MOVE, checkpoint_sequence: 1, final_checkpoint: false });
    // The late answer is fenced: the old owner lets the meeting go.
    release();
    await waitFor("slow-a to let slow-1 go", () => !a.meetings().has("slow-1"));
    expect(await cluster.call<{ sequence: number; node_id: string }>("GetCheckpoint", { meeting_id: "slow-1" })).toMatchObject({ sequence: 1, node_id: "slow-a" });
    watch.cancel();
  }, 60_000);

  it("`convene rebalance` moves meetings off a full server a few at a time, each handed over", async () => {
    const hot = new TestHost();
    await cluster.agent("hot", hot, { capacity: 10 });
    for (let i = 0; i < 8; i++) {
      expect(await cluster.call<RouteAnswer>("GetRoute", { meeting_id: `reb-${i}`, create: true, preferred_node_id: "hot" })).toMatchObject({ node_id: "hot" });
    }
    await waitFor("hot to hold its meetings", () => hot.writes.size === 8);
    for (let i = 0; i < 8; i++) hot.write(`reb-${i}`, `state of reb-${i}`);
    // Every other server is full or draining, so only the two new ones can take meetings.
    const others = await cluster.call<{ nodes: { node_id: string }[] }>("ListNodes", {});
    for (const n of others.nodes) if (n.node_id !== "hot") await cluster.call("DrainNode", { node_id: n.node_id });
    const cool1 = new TestHost();
    const cool2 = new TestHost();
    await cluster.agent("cool-1", cool1, { capacity: 10 });
    await cluster.agent("cool-2", cool2, { capacity: 10 });
    const dry = await cluster.cli(["rebalance", "--threshold", "0.5", "--dry-run", "--max-moves", "5"]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout.trim().split("\n")).toHaveLength(3); // 8/10 → 5/10: three moves, 0.5 is not above 0.5
    const watch = cluster.watchEvents((await cluster.members.status("n1")).applied_index, "n1");
    const run = await cluster.cli(["rebalance", "--threshold", "0.5", "--max-moves", "5", "--rate", "5/s", "--max-in-flight", "1"]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.trim().split("\n").filter((l) => l.startsWith("moved"))).toHaveLength(3);
    const moves = await waitFor("three rebalancing moves", () => {
      const m = watch.events.filter((e) => e.type === EVENT.MEETING_MOVED && e.reason === REASON.REBALANCE);
      return m.length === 3 ? m : undefined;
    });
    for (const m of moves) expect(m).toMatchObject({ from_node_id: "hot", final_checkpoint: true });
    // One at a time: each move finished before the next started.
    const order = watch.events
      .filter((e) => e.meeting_id.startsWith("reb-") && (e.type === EVENT.MEETING_MOVE_STARTED || e.type === EVENT.MEETING_MOVED))
      .map((e: WireEvent) => e.type);
    expect(order).toEqual([2, 3, 2, 3, 2, 3]);
    // The state went along.
    await waitFor("the new owners to hold them", () => cool1.writes.size + cool2.writes.size === 3);
    for (const [id, writes] of [...cool1.writes, ...cool2.writes]) expect(writes).toEqual([`state of ${id}`]);
    const nodes = await cluster.call<{ nodes: { node_id: string; meetings: number }[] }>("ListNodes", {});
    expect(nodes.nodes.find((n) => n.node_id === "hot")!.meetings).toBe(5);
    watch.cancel();
  }, 90_000);
});
