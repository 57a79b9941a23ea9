/**
 * The replicated state's additions for applications (issue 19): events with
 * the Raft index as id, planned moves by hand-over, drains with a deadline,
 * rebalancing, load reports, and placement constraints; each through the
 * state machine's bytes, with its snapshot round trip and determinism.
 */
import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import type { ApplyOutcome } from "../src/coordinator/command-results.js";
import { type Command, type CommandStamp, encodeCommand } from "../src/coordinator/commands.js";
import { CoordinatorStateMachine } from "../src/coordinator/coordinator-state-machine.js";
import { type CoordinatorEvent, EventLog, completeEvent } from "../src/coordinator/event-log.js";
import { NEWEST_CLUSTER_VERSION, formatsAt } from "../src/coordinator/formats.js";
import type { CoordinatorStateConfig } from "../src/coordinator/state-config.js";
import { validateLabels } from "../src/coordinator/labels.js";
import type { LoadReport } from "../src/coordinator/load-commands.js";
import { SeededRandom } from "../src/raft/random.js";
import { Harness, type Input } from "./support/state-harness.js";

const bytes = (text: string) => new TextEncoder().encode(text);
/** What a leader of a group at the newest cluster version stamps (the additions need cluster version 3). */
const NEWEST: CommandStamp = { version: formatsAt(NEWEST_CLUSTER_VERSION).command, term: 1 };

/** A state machine whose group raised the cluster version to the newest, as a group of this release does at once. */
function newestHarness(config: Partial<CoordinatorStateConfig> = {}): Harness {
  const h = new Harness(config);
  h.raiseClusterVersion();
  return h;
}

/** A state machine at the newest cluster version, fed its raise at index 1. */
function newestMachine(config: Partial<CoordinatorStateConfig> = {}): CoordinatorStateMachine {
  const sm = new CoordinatorStateMachine({ config });
  sm.apply(encodeCommand({ type: "setClusterVersion", nowMs: 1, version: NEWEST_CLUSTER_VERSION }, NEWEST), 1);
  return sm;
}
const text = (data: Uint8Array | undefined) => (data ? new TextDecoder().decode(data) : undefined);

/** The events of the last command, as short strings. */
function eventsOf(h: Harness, index = h.index): string[] {
  return h.q
    .eventsSince(index - 1)
    .filter((e) => e.index === index)
    .map((e) => {
      const parts = [`${e.index}:${e.position}`, e.type, e.meetingId || e.nodeId];
      if (e.type === "MEETING_MOVED" || e.type === "MEETING_MOVE_STARTED") parts.push(`${e.fromNodeId || "-"}→${e.toNodeId || "-"}`, e.reason);
      if (e.type === "MEETING_MOVED" && e.checkpointSequence) parts.push(`cp${e.checkpointSequence}${e.finalCheckpoint ? " final" : ""}`);
      return parts.join(" ");
    });
}

function saved(h: Harness, input: Input): void {
  const { result } = h.run(input);
  if (!result.ok) throw new Error(`save refused: ${result.message}`);
}

function load(nodeId: string, h: Harness, figures: Partial<Omit<LoadReport, "nodeId" | "generation">>): LoadReport {
  return { nodeId, generation: h.q.getNode(nodeId)!.generation, cpuPermille: 0, netInBytesPerSec: 0, netOutBytesPerSec: 0, participants: 0, ...figures };
}

describe("events", () => {
  it("each change an application cares about is an event whose id is the Raft index (and a position within it)", () => {
    const h = newestHarness();
    h.register("a");
    expect(eventsOf(h)).toEqual([`${h.index}:0 NODE_REGISTERED a`]);
    h.register("b");
    h.create("m1");
    expect(eventsOf(h)).toEqual([`${h.index}:0 MEETING_CREATED m1`]);
    const owner = h.ownerOf("m1");
    saved(h, h.save("m1", 4));
    expect(eventsOf(h)).toEqual([]); // a checkpoint is no event
    h.ok({ type: "setLiveness", nodeId: owner, generation: h.q.getNode(owner)!.generation, liveness: "SUSPECT" });
    expect(eventsOf(h)).toEqual([`${h.index}:0 NODE_SUSPECT ${owner}`]);
    h.kill(owner);
    const other = owner === "a" ? "b" : "a";
    expect(eventsOf(h)).toEqual([`${h.index}:0 NODE_DEAD ${owner}`, `${h.index}:1 MEETING_MOVED m1 ${owner}→${other} NODE_DEAD cp4`]);
    h.ok({ type: "endMeeting", meetingId: "m1" });
    expect(eventsOf(h)).toEqual([`${h.index}:0 MEETING_ENDED m1`]);
    const ended = h.q.eventsSince(h.index - 1)[0]!;
    expect(ended).toMatchObject({ nodeId: other, epoch: 2, atMs: h.nowMs });
  });

  it("drain, undrain, deregister, and a meeting placed after waiting for room", () => {
    const h = newestHarness();
    h.register("a", { capacity: 1 });
    h.register("b", { capacity: 1 });
    h.create("m1");
    h.create("m2");
    h.ok({ type: "drainNode", nodeId: "a", migrate: false });
    expect(eventsOf(h)).toEqual([`${h.index}:0 NODE_DRAINING a`]);
    h.ok({ type: "drainNode", nodeId: "a", migrate: false });
    expect(eventsOf(h)).toEqual([]); // already draining: no change
    h.ok({ type: "undrain", nodeId: "a" });
    expect(eventsOf(h)).toEqual([`${h.index}:0 NODE_UNDRAINED a`]);
    h.ok({ type: "undrain", nodeId: "a" });
    expect(eventsOf(h)).toEqual([]);
    // b leaves: its meeting has nowhere to go and waits; a new node takes it.
    const bMeeting = h.q.listMeetings("b")[0]!.meetingId;
    h.ok({ type: "deregister", nodeId: "b", generation: 1 });
    expect(eventsOf(h)).toEqual([`${h.index}:0 NODE_DEREGISTERED b`, `${h.index}:1 MEETING_MOVED ${bMeeting} b→- NODE_LEFT`]);
    h.register("c");
    expect(eventsOf(h)).toEqual([`${h.index}:0 NODE_REGISTERED c`, `${h.index}:1 MEETING_MOVED ${bMeeting} -→c PLACED`]);
    h.ok({ type: "drainNode", nodeId: "c", migrate: true });
    // a is full: m stays; the drain is still an event.
    expect(eventsOf(h)).toEqual([`${h.index}:0 NODE_DRAINING c`]);
  });

  it("a node that registers again keeps its meetings at new epochs (NODE_REREGISTERED); a repeated Register of the same process is no event", () => {
    const h = newestHarness();
    const register = (incarnation: string) =>
      h.ok({ type: "register", nodeId: "a", address: "10.0.0.1:9000", capacity: 10, region: "", labels: [], incarnation });
    register("process-1");
    h.create("m1");
    register("process-1");
    expect(eventsOf(h)).toEqual([]);
    register("process-2");
    expect(eventsOf(h)).toEqual([`${h.index}:0 NODE_REGISTERED a`, `${h.index}:1 MEETING_MOVED m1 a→a NODE_REREGISTERED`]);
    expect(h.q.eventsSince(h.index - 1)[1]).toMatchObject({ epoch: 2, generation: 0 });
  });

  it("the log keeps the newest events, drops the oldest index whole, and tells how far back a watcher can resume", () => {
    const log = new EventLog(5);
    const add = (index: number, n: number) => log.append(Array.from({ length: n }, (_, p) => completeEvent({ type: "NODE_ALIVE", nodeId: `n${p}` }, index, p, index)));
    add(3, 2);
    add(5, 3);
    expect([log.floor, log.oldestIndex, log.size]).toEqual([0, 3, 5]);
    add(6, 2); // 7 > 5: index 3 goes, whole
    expect([log.floor, log.oldestIndex, log.size]).toEqual([3, 5, 5]);
    expect(log.since(4).map((e) => `${e.index}:${e.position}`)).toEqual(["5:0", "5:1", "5:2", "6:0", "6:1"]);
    expect(log.since(5).map((e) => `${e.index}:${e.position}`)).toEqual(["6:0", "6:1"]);
    // A limit never cuts an index in two.
    expect(log.since(0, 1).map((e) => `${e.index}:${e.position}`)).toEqual(["5:0", "5:1", "5:2"]);
    add(9, 9); // the newest index stays whole even over the capacity
    expect([log.floor, log.oldestIndex, log.size]).toEqual([6, 9, 9]);
    expect(() => add(9, 1)).toThrow(/appended after/);
  });

  it("a state machine's event log is trimmed by its config and every member holds the same", () => {
    const h = newestHarness({ eventLogSize: 3 });
    h.register("a", { capacity: 100 });
    for (let i = 0; i < 5; i++) h.create(`m${i}`);
    expect(h.q.eventsSince(0).map((e) => e.meetingId)).toEqual(["m2", "m3", "m4"]);
    expect(h.q.eventFloor).toBe(h.index - 3);
  });
});

describe("planned moves", () => {
  function twoNodes(): Harness {
    const h = newestHarness();
    h.register("a");
    h.register("b");
    h.create("m");
    return h;
  }

  it("the owner is told to hand over; its final checkpoint goes to the new owner in the same command", () => {
    const h = twoNodes();
    const from = h.ownerOf("m");
    const to = from === "a" ? "b" : "a";
    saved(h, h.save("m", 3));
    const started = h.run({ type: "startMove", meetingId: "m", toNodeId: to, timeoutMs: 5_000 });
    expect(started.result).toMatchObject({ ok: true, fromNodeId: from, toNodeId: to, epoch: 1, deadlineMs: h.nowMs + 5_000, started: true });
    expect(started.events).toEqual([{ type: "HANDOVER", nodeId: from, generation: 1, meetingId: "m", epoch: 1 }]);
    expect(eventsOf(h)).toEqual([`${h.index}:0 MEETING_MOVE_STARTED m ${from}→${to} PLANNED_MOVE`]);
    // The route does not change until the owner answers; a re-subscribing owner is asked again.
    expect(h.ownerOf("m")).toBe(from);
    expect(h.q.meetingsOf(from)).toEqual([{ meetingId: "m", epoch: 1, checkpoint: expect.anything(), handingOver: true }]);
    // The same request again changes nothing; another target is refused.
    expect(h.ok({ type: "startMove", meetingId: "m", toNodeId: to, timeoutMs: 5_000 }).started).toBe(false);
    expect(h.fail({ type: "startMove", meetingId: "m", toNodeId: "", timeoutMs: 5_000 })).toMatchObject({ code: "FAILED_PRECONDITION", message: expect.stringContaining("already under way") });
    // Ordinary saves of the owner still count while it prepares.
    saved(h, h.save("m", 4));
    const done = h.run({ type: "completeMove", nodeId: from, generation: 1, meetingId: "m", epoch: 1, sequence: 5, state: bytes("final") });
    expect(done.result).toMatchObject({ ok: true, sequence: 5, toNodeId: to, epoch: 2 });
    expect(done.events.map((e) => `${e.type} ${e.nodeId}@${e.epoch} ${e.checkpoint ? text(e.checkpoint.state) : ""}`)).toEqual([`REVOKED ${from}@1 `, `ASSIGNED ${to}@2 final`]);
    expect(eventsOf(h)).toEqual([`${h.index}:0 MEETING_MOVED m ${from}→${to} PLANNED_MOVE cp5 final`]);
    expect(text(h.q.getCheckpoint("m")!.state)).toBe("final");
    expect(h.q.pendingMoves()).toEqual([]);
    // The old owner is fenced now.
    expect(h.fail(h.save("m", 6, { nodeId: from, epoch: 1 }))).toMatchObject({ code: "FAILED_PRECONDITION" });
    expect(h.fail({ type: "completeMove", nodeId: from, generation: 1, meetingId: "m", epoch: 1, sequence: 6, state: bytes("late") })).toMatchObject({ code: "FAILED_PRECONDITION" });
  });

  it("refuses what cannot be moved, naming why", () => {
    const h = twoNodes();
    const from = h.ownerOf("m");
    const to = from === "a" ? "b" : "a";
    expect(h.fail({ type: "startMove", meetingId: "nope", toNodeId: "", timeoutMs: 1_000 })).toMatchObject({ code: "NOT_FOUND" });
    expect(h.fail({ type: "startMove", meetingId: "m", toNodeId: from, timeoutMs: 1_000 })).toMatchObject({ code: "FAILED_PRECONDITION", message: expect.stringContaining("already on") });
    expect(h.fail({ type: "startMove", meetingId: "m", toNodeId: "ghost", timeoutMs: 1_000 })).toMatchObject({ code: "NOT_FOUND" });
    h.ok({ type: "drainNode", nodeId: to, migrate: false });
    expect(h.fail({ type: "startMove", meetingId: "m", toNodeId: to, timeoutMs: 1_000 })).toMatchObject({ code: "FAILED_PRECONDITION", message: expect.stringContaining("draining") });
    expect(h.fail({ type: "startMove", meetingId: "m", toNodeId: "", timeoutMs: 1_000 })).toMatchObject({ code: "RESOURCE_EXHAUSTED", message: expect.stringContaining("draining") });
    expect(h.fail({ type: "completeMove", nodeId: from, generation: 1, meetingId: "m", epoch: 1, sequence: 1, state: bytes("x") })).toMatchObject({
      code: "FAILED_PRECONDITION",
      message: expect.stringContaining("no hand-over"),
    });
    expect(() => encodeCommand({ type: "startMove", nowMs: 1, meetingId: "m", toNodeId: "", timeoutMs: 0 }, NEWEST)).toThrow(/timeout_ms must be from 1/);
  });

  it("the final checkpoint must be above the stored one, and too large a state is refused", () => {
    const h = twoNodes();
    const from = h.ownerOf("m");
    saved(h, h.save("m", 7));
    h.ok({ type: "startMove", meetingId: "m", toNodeId: "", timeoutMs: 1_000 });
    expect(h.fail({ type: "completeMove", nodeId: from, generation: 1, meetingId: "m", epoch: 1, sequence: 7, state: bytes("m@7") })).toMatchObject({ code: "FAILED_PRECONDITION" });
    expect(h.fail({ type: "completeMove", nodeId: from, generation: 1, meetingId: "m", epoch: 1, sequence: 8, state: new Uint8Array(300 * 1024) })).toMatchObject({ code: "RESOURCE_EXHAUSTED" });
    expect(h.ownerOf("m")).toBe(from);
  });

  it("a requested node that can no longer take it yields to placement; no node at all gives the meeting back to its owner, nothing lost", () => {
    const h = newestHarness();
    h.register("a");
    h.register("b");
    h.register("c");
    h.create("m", { preferredNodeId: "a" });
    h.ok({ type: "startMove", meetingId: "m", toNodeId: "b", timeoutMs: 1_000 });
    h.ok({ type: "drainNode", nodeId: "b", migrate: false });
    expect(h.ok({ type: "completeMove", nodeId: "a", generation: 1, meetingId: "m", epoch: 1, sequence: 1, state: bytes("s1") }).toNodeId).toBe("c");
    h.ok({ type: "startMove", meetingId: "m", toNodeId: "", timeoutMs: 1_000 });
    h.ok({ type: "drainNode", nodeId: "a", migrate: false });
    const back = h.run({ type: "completeMove", nodeId: "c", generation: 1, meetingId: "m", epoch: 2, sequence: 2, state: bytes("s2") });
    expect(back.result).toMatchObject({ ok: true, toNodeId: "c", epoch: 3 });
    expect(back.events.map((e) => `${e.type} ${e.nodeId}@${e.epoch} ${text(e.checkpoint?.state)}`)).toEqual(["REVOKED c@2 undefined", "ASSIGNED c@3 s2"]);
  });

  it("an owner that does not answer by the deadline: an ordinary failover move with the last checkpoint", () => {
    const h = twoNodes();
    const from = h.ownerOf("m");
    saved(h, h.save("m", 2));
    h.ok({ type: "startMove", meetingId: "m", toNodeId: "", timeoutMs: 1_000 });
    expect(h.q.pendingMoves()).toEqual([expect.objectContaining({ meetingId: "m", ownerId: from, epoch: 1, deadlineMs: h.nowMs + 1_000 })]);
    h.nowMs += 999;
    expect(h.fail({ type: "expireMove", meetingId: "m", epoch: 1 })).toMatchObject({ code: "FAILED_PRECONDITION", message: expect.stringContaining("not due") });
    h.nowMs += 1;
    expect(h.ok({ type: "expireMove", meetingId: "m", epoch: 1 })).toMatchObject({ expired: true });
    expect(eventsOf(h)).toEqual([`${h.index}:0 MEETING_MOVED m ${from}→${h.ownerOf("m")} PLANNED_MOVE cp2`]);
    expect(h.ok({ type: "expireMove", meetingId: "m", epoch: 1 })).toMatchObject({ expired: false });
    expect(h.fail({ type: "completeMove", nodeId: from, generation: 1, meetingId: "m", epoch: 1, sequence: 3, state: bytes("late") })).toMatchObject({ code: "FAILED_PRECONDITION" });
  });

  it("an owner that dies during a hand-over: the failover takes over and the move ends", () => {
    const h = twoNodes();
    const from = h.ownerOf("m");
    h.ok({ type: "startMove", meetingId: "m", toNodeId: "", timeoutMs: 1_000 });
    h.kill(from);
    expect(h.q.pendingMoves()).toEqual([]);
    expect(eventsOf(h)[1]).toContain("NODE_DEAD");
  });
});

describe("drains with a deadline", () => {
  it("no new meetings; at the deadline the remaining meetings are handed over; undrain takes new ones again", () => {
    const h = newestHarness();
    h.register("a", { capacity: 3 });
    h.create("m1");
    h.create("m2");
    h.register("b", { capacity: 1 });
    expect(h.ok({ type: "scheduleDrain", nodeId: "a", generation: 0, afterMs: 60_000 }).deadlineMs).toBe(h.nowMs + 60_000);
    expect(h.q.getNode("a")).toMatchObject({ state: "DRAINING", drainDeadlineMs: h.nowMs + 60_000 });
    expect(h.q.eventsSince(h.index - 1)[0]).toMatchObject({ type: "NODE_DRAINING", nodeId: "a", drainDeadlineMs: h.nowMs + 60_000 });
    expect(h.create("m3").route.nodeId).toBe("b");
    h.ok({ type: "endMeeting", meetingId: "m1" }); // ends where it is
    expect(h.q.dueDrains(h.nowMs + 59_999)).toEqual([]);
    expect(h.fail({ type: "drainDue", nodeId: "a", timeoutMs: 1_000 })).toMatchObject({ code: "FAILED_PRECONDITION" });
    h.nowMs += 60_000;
    // b is full: nothing can move yet, so the drain is not due.
    expect(h.q.dueDrains(h.nowMs)).toEqual([]);
    h.ok({ type: "endMeeting", meetingId: "m3" });
    expect(h.q.dueDrains(h.nowMs)).toEqual(["a"]);
    expect(h.ok({ type: "drainDue", nodeId: "a", timeoutMs: 1_000 })).toMatchObject({ started: 1, stayed: 0 });
    expect(eventsOf(h)).toEqual([`${h.index}:0 MEETING_MOVE_STARTED m2 a→- DRAIN`]);
    expect(h.q.dueDrains(h.nowMs)).toEqual([]);
    h.ok({ type: "completeMove", nodeId: "a", generation: 1, meetingId: "m2", epoch: 1, sequence: 1, state: bytes("m2 final") });
    expect(eventsOf(h)).toEqual([`${h.index}:0 MEETING_MOVED m2 a→b DRAIN cp1 final`]);
    h.ok({ type: "undrain", nodeId: "a" });
    expect(h.q.getNode("a")).toMatchObject({ state: "ALIVE", drainDeadlineMs: 0 });
  });

  it("an agent's own drain is fenced by its generation", () => {
    const h = newestHarness();
    h.register("a");
    h.register("a");
    expect(h.fail({ type: "scheduleDrain", nodeId: "a", generation: 1, afterMs: 0 })).toMatchObject({ code: "FAILED_PRECONDITION" });
    h.ok({ type: "scheduleDrain", nodeId: "a", generation: 2, afterMs: 0 });
    expect(h.fail({ type: "scheduleDrain", nodeId: "ghost", generation: 0, afterMs: 0 })).toMatchObject({ code: "NOT_FOUND" });
  });
});

describe("rebalancing", () => {
  it("moves meetings off nodes above the threshold, a few at a time, until no node is above it or a move would not help", () => {
    const h = newestHarness();
    h.register("hot", { capacity: 10 });
    for (let i = 0; i < 9; i++) h.create(`m${i}`);
    h.register("cold1", { capacity: 10 });
    h.register("cold2", { capacity: 10 });
    const r = h.ok({ type: "rebalance", maxMoves: 5, maxInFlight: 2, thresholdPermille: 500, timeoutMs: 1_000 });
    expect(r.moves).toEqual([
      { meetingId: "m0", fromNodeId: "hot", toNodeId: "cold1" },
      { meetingId: "m1", fromNodeId: "hot", toNodeId: "cold2" },
    ]);
    expect(r.inFlight).toBe(2);
    // No more while two are under way.
    expect(h.ok({ type: "rebalance", maxMoves: 5, maxInFlight: 2, thresholdPermille: 500, timeoutMs: 1_000 }).moves).toEqual([]);
    const finish = () => {
      for (const m of h.q.pendingMoves()) {
        const seq = (h.q.getCheckpoint(m.meetingId)?.sequence ?? 0) + 1;
        h.ok({ type: "completeMove", nodeId: m.ownerId, generation: 1, meetingId: m.meetingId, epoch: m.epoch, sequence: seq, state: bytes("s") });
      }
    };
    finish();
    for (let round = 0; round < 10; round++) {
      if (h.ok({ type: "rebalance", maxMoves: 5, maxInFlight: 2, thresholdPermille: 500, timeoutMs: 1_000 }).moves.length === 0) break;
      finish();
    }
    const counts = h.q.listNodes().map((n) => `${n.nodeId}=${n.meetings}`);
    expect(counts).toEqual(["cold1=2", "cold2=2", "hot=5"]);
  });

  it("a move is made only when it lowers the fuller of the two nodes: two nodes equally full never trade a meeting back and forth", () => {
    const h = newestHarness();
    h.register("a", { capacity: 4 });
    h.register("b", { capacity: 4 });
    for (let i = 0; i < 6; i++) h.create(`m${i}`);
    // 3 and 3 of 4: both at 0.75, above 0.5, yet no move lowers the fullest.
    expect(h.ok({ type: "rebalance", maxMoves: 10, maxInFlight: 10, thresholdPermille: 500, timeoutMs: 1_000 }).moves).toEqual([]);
  });

  it("CPU reported by heartbeats counts: a node hot by CPU is relieved, and its meetings' share of CPU goes with them", () => {
    const h = newestHarness();
    h.register("a", { capacity: 100 });
    h.register("b", { capacity: 100 });
    for (let i = 0; i < 4; i++) h.create(`m${i}`);
    h.ok({ type: "reportLoad", reports: [load("a", h, { cpuPermille: 900 }), load("b", h, { cpuPermille: 100 })] });
    const plan = h.q.planRebalance({ maxMoves: 10, maxInFlight: 10, thresholdPermille: 600 });
    // a: 2 meetings at 0.45 of CPU each; after one move a is at 0.45, b at 0.55, under the threshold: one move.
    expect(plan).toEqual([{ meetingId: "m0", fromNodeId: "a", toNodeId: "b" }]);
  });
});

describe("load reports and placement constraints", () => {
  it("reported figures steer placement, a declared limit is never passed, and figures of an old incarnation are dropped", () => {
    const h = newestHarness();
    h.register("a", { limits: { cpuPermille: 800 } });
    h.register("b");
    expect(h.ok({ type: "reportLoad", reports: [load("a", h, { cpuPermille: 100 }), load("b", h, { cpuPermille: 500, participants: 40 })] })).toMatchObject({ written: 2, dropped: 0 });
    expect(h.q.getNode("b")!.load).toMatchObject({ cpuPermille: 500, participants: 40, reportedAtMs: h.nowMs });
    expect(h.create("m1").route.nodeId).toBe("a");
    h.ok({ type: "reportLoad", reports: [load("a", h, { cpuPermille: 800 })] });
    expect(h.create("m2").route.nodeId).toBe("b");
    h.ok({ type: "drainNode", nodeId: "b", migrate: false });
    expect(h.fail({ type: "createMeeting", meetingId: "m3", region: "", requiredLabels: [] })).toMatchObject({ code: "RESOURCE_EXHAUSTED", message: expect.stringContaining("1 at a declared load limit") });
    expect(h.ok({ type: "reportLoad", reports: [{ ...load("a", h, {}), generation: 7 }, load("a", h, { cpuPermille: 100 })] })).toMatchObject({ written: 1, dropped: 1 });
    // Register again: limits as declared now, figures forgotten.
    h.register("a");
    expect(h.q.getNode("a")).toMatchObject({ limits: { cpuPermille: 0 }, load: { cpuPermille: 0, reportedAtMs: 0 } });
  });

  it("a preferred node is honoured when it has room; excluded labels keep a meeting off a node, on every later move too", () => {
    const h = newestHarness();
    h.register("a", { capacity: 1, labels: { tier: "gold" } });
    h.register("b", { labels: { tier: "trial" } });
    h.register("c");
    expect(h.create("p1", { preferredNodeId: "c" }).route.nodeId).toBe("c");
    expect(h.create("p2", { preferredNodeId: "a" }).route.nodeId).toBe("a");
    expect(h.create("p3", { preferredNodeId: "a" }).route.nodeId).not.toBe("a"); // full now: placement decides
    expect(h.create("p4", { preferredNodeId: "ghost" }).route.nodeId).not.toBe("ghost");
    expect(h.create("x1", { excludedLabels: { tier: "trial" } }).route.nodeId).toBe("c");
    h.kill("c");
    expect(h.q.getRoute("x1")).toMatchObject({ ok: false, code: "RESOURCE_EXHAUSTED" }); // a full, b excluded: waits
    expect(() => encodeCommand({ type: "createMeeting", nowMs: 1, meetingId: "m", region: "", requiredLabels: [], preferredNodeId: "no good" }, NEWEST)).toThrow(/preferred_node_id/);
    expect(() => encodeCommand({ type: "createMeeting", nowMs: 1, meetingId: "m", region: "", requiredLabels: [], excludedLabels: validateLabels({ k: "v" }).concat([["k", "w"]]) }, NEWEST)).toThrow(/excluded_labels/);
  });
});

describe("snapshots and determinism", () => {
  function busy(): Harness {
    const h = newestHarness({ eventLogSize: 50 });
    h.register("a", { capacity: 20, limits: { cpuPermille: 900, participants: 500 } });
    h.register("b", { capacity: 20 });
    for (let i = 0; i < 30; i++) h.create(`m${i}`, i % 3 === 0 ? { excludedLabels: { zone: "z9" } } : {});
    h.ok({ type: "reportLoad", reports: [load("a", h, { cpuPermille: 400, netInBytesPerSec: 1234, participants: 77 })] });
    h.ok({ type: "startMove", meetingId: "m3", toNodeId: "", timeoutMs: 9_000 });
    h.ok({ type: "scheduleDrain", nodeId: "b", generation: 0, afterMs: 30_000 });
    return h;
  }

  it("round-trips every addition exactly (snapshot format 4), and a format 3 snapshot, written before them, still restores", () => {
    const h = busy();
    const snap = h.sm.snapshot();
    const restored = new CoordinatorStateMachine({ config: { eventLogSize: 50 } });
    restored.restore(snap);
    restored.checkInvariants();
    expect(Buffer.from(restored.snapshot()).equals(Buffer.from(snap))).toBe(true);
    expect(restored.queries.pendingMoves()).toEqual(h.q.pendingMoves());
    expect(restored.queries.listNodes()).toEqual(h.q.listNodes());
    expect(restored.queries.eventsSince(0)).toEqual(h.q.eventsSince(0));
    expect(restored.queries.eventFloor).toBe(h.q.eventFloor);

    const buffer = Buffer.from(snap);
    const headerLength = buffer.readUInt32BE(0);
    const packr = new Packr({ useRecords: false, moreTypes: false });
    const body = packr.unpack(buffer.subarray(4, 4 + headerLength)) as Record<string, unknown>;
    expect([body["v"], body["clusterVersion"]]).toEqual([4, 3]);
    for (const key of ["nodeExtras", "meetingExtras", "events", "eventFloor"]) delete body[key];
    const withHeader = (header: Uint8Array) => {
      const length = Buffer.alloc(4);
      length.writeUInt32BE(header.length);
      return Buffer.concat([length, header, buffer.subarray(4 + headerLength)]);
    };
    // Format 4 without them is damaged, not older.
    expect(() => new CoordinatorStateMachine().restore(withHeader(packr.pack(body)))).toThrow(/snapshot/);
    const older = new CoordinatorStateMachine();
    older.restore(withHeader(packr.pack({ ...body, v: 3, clusterVersion: 2 })));
    older.checkInvariants();
    expect(older.queries.listMeetings()).toEqual(h.q.listMeetings());
    // The events before such a snapshot are unknown: watchers resume from its index on.
    expect(older.queries.eventFloor).toBe(h.index);
    expect(older.queries.eventsSince(0)).toEqual([]);
    expect(older.queries.pendingMoves()).toEqual([]);
  });

  it.each([1, 2, 3])("two members fed the same 1,500 random commands, moves and load reports included, agree byte for byte (seed %i)", (seed) => {
    const a = newestMachine({ eventLogSize: 200 });
    const b = newestMachine({ eventLogSize: 200 });
    const rng = new SeededRandom(seed);
    let nowMs = 1_000_000;
    const seen = new Set<string>();
    for (let index = 2; index <= 1_501; index++) {
      nowMs += rng.intBelow(800);
      const command = encodeCommand(randomCommand(rng, a, nowMs), NEWEST);
      const outcomes: ApplyOutcome[] = [a.apply(command, index), b.apply(command, index)];
      expect(outcomes[1]).toEqual(outcomes[0]);
      a.checkInvariants();
      seen.add(outcomes[0]!.result.ok ? outcomes[0]!.result.type : outcomes[0]!.result.code);
      // One member installs a snapshot midway: it must go on exactly as the other.
      if (index === 700) b.restore(b.snapshot());
    }
    expect(Buffer.from(a.snapshot()).equals(Buffer.from(b.snapshot()))).toBe(true);
    for (const kind of ["startMove", "completeMove", "expireMove", "rebalance", "scheduleDrain", "drainDue", "undrain", "reportLoad", "createMeeting", "setLiveness"]) {
      expect(seen).toContain(kind);
    }
    const events: CoordinatorEvent[] = a.queries.eventsSince(0);
    expect(events.length).toBeGreaterThan(100);
    for (let i = 1; i < events.length; i++) {
      const [p, e] = [events[i - 1]!, events[i]!];
      expect(e.index > p.index || (e.index === p.index && e.position === p.position + 1)).toBe(true);
    }
  });
});

const NODES = ["a", "b", "c", "d"];

function randomCommand(rng: SeededRandom, sm: CoordinatorStateMachine, nowMs: number): Command {
  const q = sm.queries;
  const nodeId = NODES[rng.intBelow(NODES.length)]!;
  const meetingId = `m${rng.intBelow(25)}`;
  const node = q.getNode(nodeId);
  const generation = node?.generation ?? 1;
  const roll = rng.intBelow(100);
  const pending = q.pendingMoves();
  if (roll < 8) return { type: "register", nowMs, nodeId, address: `10.0.0.1:${9000 + rng.intBelow(9)}`, capacity: 1 + rng.intBelow(8), region: "", labels: [], limits: { cpuPermille: rng.chance(0.3) ? 700 : 0, netInBytesPerSec: 0, netOutBytesPerSec: 0, participants: rng.chance(0.2) ? 50 : 0 } };
  if (roll < 14) return { type: "setLiveness", nowMs, nodeId, generation, liveness: (["ALIVE", "SUSPECT", "DEAD"] as const)[rng.intBelow(3)]! };
  if (roll < 32) {
    return { type: "createMeeting", nowMs, meetingId, region: "", requiredLabels: [], excludedLabels: [], preferredNodeId: rng.chance(0.3) ? nodeId : "" };
  }
  if (roll < 37) return { type: "endMeeting", nowMs, meetingId };
  if (roll < 47) {
    const route = q.getRoute(meetingId);
    const owner = route.ok ? route.route.nodeId : nodeId;
    const sequence = (q.getCheckpoint(meetingId)?.sequence ?? 0) + rng.intBelow(2);
    return { type: "saveCheckpoint", nowMs, nodeId: owner, generation: q.getNode(owner)?.generation ?? 1, meetingId, epoch: route.ok ? route.route.epoch : 1, sequence, state: bytes(`${meetingId}@${sequence}`) };
  }
  if (roll < 56) return { type: "startMove", nowMs, meetingId, toNodeId: rng.chance(0.5) ? nodeId : "", timeoutMs: 1 + rng.intBelow(3_000) };
  if (roll < 66 && pending.length > 0) {
    const m = pending[rng.intBelow(pending.length)]!;
    const sequence = (q.getCheckpoint(m.meetingId)?.sequence ?? 0) + 1;
    return { type: "completeMove", nowMs, nodeId: m.ownerId, generation: q.getNode(m.ownerId)!.generation, meetingId: m.meetingId, epoch: m.epoch, sequence, state: bytes(`final ${sequence}`) };
  }
  if (roll < 72 && pending.length > 0) {
    const m = pending[rng.intBelow(pending.length)]!;
    return { type: "expireMove", nowMs: Math.max(nowMs, m.deadlineMs), meetingId: m.meetingId, epoch: m.epoch };
  }
  if (roll < 77) return { type: "rebalance", nowMs, maxMoves: 1 + rng.intBelow(3), maxInFlight: 1 + rng.intBelow(4), thresholdPermille: rng.intBelow(1000), timeoutMs: 2_000 };
  if (roll < 81) return { type: "scheduleDrain", nowMs, nodeId, generation: rng.chance(0.5) ? generation : 0, afterMs: rng.intBelow(2_000) };
  if (roll < 86) return { type: "drainDue", nowMs, nodeId, timeoutMs: 2_000 };
  if (roll < 89) return { type: "undrain", nowMs, nodeId };
  if (roll < 96) {
    return {
      type: "reportLoad",
      nowMs,
      reports: NODES.filter(() => rng.chance(0.6)).map((id) => ({
        nodeId: id,
        generation: q.getNode(id)?.generation ?? 1,
        cpuPermille: rng.intBelow(1001),
        netInBytesPerSec: rng.intBelow(1_000_000),
        netOutBytesPerSec: rng.intBelow(1_000_000),
        participants: rng.intBelow(80),
      })),
    };
  }
  if (roll < 98) return { type: "drainNode", nowMs, nodeId, migrate: rng.chance(0.5) };
  return { type: "deregister", nowMs, nodeId, generation };
}
