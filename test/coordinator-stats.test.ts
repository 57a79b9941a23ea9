/**
 * What the coordinator counts for the metrics (CoordinatorStats), fed by a
 * real state machine: moves by reason on every member, and on the leader
 * the time from a node's death to each of its meetings' new owner, also
 * for a meeting that had to wait for room.
 */
import { describe, expect, it } from "vitest";
import type { ApplyOutcome } from "../src/coordinator/command-results.js";
import { type Command, encodeCommand } from "../src/coordinator/commands.js";
import { CoordinatorStateMachine } from "../src/coordinator/coordinator-state-machine.js";
import { CoordinatorStats } from "../src/coordinator/service/coordinator-stats.js";

type Input = Command extends infer C ? (C extends Command ? Omit<C, "nowMs"> : never) : never;

function group() {
  const sm = new CoordinatorStateMachine();
  let index = 0;
  let now = 10_000;
  const outcomes: ApplyOutcome[] = [];
  sm.subscribe((n) => {
    if (n.kind === "applied") outcomes.push(n.outcome);
  });
  const run = (c: Input): ApplyOutcome => {
    sm.apply(encodeCommand({ ...c, nowMs: now } as Command), ++index);
    return outcomes.at(-1)!;
  };
  const register = (nodeId: string, capacity: number): ApplyOutcome =>
    run({ type: "register", nodeId, address: `10.0.0.1:${9000 + index}`, capacity, region: "", labels: [] });
  return { sm, run, register, advance: (ms: number) => (now += ms), now: () => now };
}

describe("CoordinatorStats", () => {
  it("counts moves by reason on every member, and times those of a dead node on the leader, from its silence", () => {
    const g = group();
    g.register("m1", 10);
    g.register("m2", 10);
    for (const m of ["a", "b", "c", "d"]) g.run({ type: "createMeeting", meetingId: m, region: "", requiredLabels: [] });
    const leader = new CoordinatorStats(g.now);
    const follower = new CoordinatorStats(g.now);
    const timed: number[] = [];
    leader.onMoveTimed = (s) => timed.push(s);
    const onM1 = g.sm.queries.listMeetings("m1").length;
    g.advance(700);
    const dead = g.run({ type: "setLiveness", nodeId: "m1", generation: 1, liveness: "DEAD" });
    // The leader's detector last heard m1 700 ms before this apply.
    leader.noteApplied(dead, (id) => (id === "m1" ? 700 : undefined));
    follower.noteApplied(dead, undefined);
    expect(leader.moves.node_dead).toBe(onM1);
    expect(follower.moves.node_dead).toBe(onM1);
    expect(timed).toEqual(Array(onM1).fill(0.7));
    const drained = g.run({ type: "drainNode", nodeId: "m2", migrate: true });
    leader.noteApplied(drained, () => undefined);
    expect(leader.moves.drain).toBe(0); // no node has room: the meetings stay
  });

  it("times a meeting that waited for room when it is finally placed", () => {
    const g = group();
    g.register("m1", 10);
    g.run({ type: "createMeeting", meetingId: "a", region: "", requiredLabels: [] });
    const leader = new CoordinatorStats(g.now);
    const timed: number[] = [];
    leader.onMoveTimed = (s) => timed.push(s);
    const silent = (id: string) => (id === "m1" ? 300 : undefined);
    leader.noteApplied(g.run({ type: "setLiveness", nodeId: "m1", generation: 1, liveness: "DEAD" }), silent);
    expect(g.sm.unassignedMeetings()).toEqual(["a"]);
    expect(timed).toEqual([]);
    g.advance(2_000);
    // Room again: the waiting meeting is placed by this very command.
    leader.noteApplied(g.register("m2", 10), silent);
    expect(timed).toEqual([2.3]);
    expect(leader.moves.placed_after_wait).toBe(1);
  });
});

