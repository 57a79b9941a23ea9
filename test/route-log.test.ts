/**
 * The route log behind the gateways' route feed: each applied command's
 * route changes read from the new state, resumable by revision, trimmed to
 * its capacity, and reset by a snapshot install.
 */
import { describe, expect, it } from "vitest";
import { type Command, encodeCommand } from "../src/coordinator/commands.js";
import { CoordinatorStateMachine } from "../src/coordinator/coordinator-state-machine.js";
import type { StateMachineNotice } from "../src/coordinator/coordinator-state-machine.js";
import { type RouteBatch, RouteLog } from "../src/coordinator/service/route-log.js";
import type { CoordinatorQueries } from "../src/coordinator/state.js";

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

function setup(capacity?: number) {
  const sm = new CoordinatorStateMachine();
  const log = new RouteLog(() => sm.queries, capacity);
  sm.subscribe((n) => log.onNotice(n));
  const seen: RouteBatch[] = [];
  let resets = 0;
  log.subscribe(
    (b) => seen.push(b),
    () => resets++,
  );
  let index = 0;
  const run = (c: DistributiveOmit<Command, "nowMs">) => sm.apply(encodeCommand({ nowMs: 1_000, ...c } as Command), ++index);
  const register = (nodeId: string, address = `127.0.0.1:${9000 + nodeId.length}`) =>
    run({ type: "register", nodeId, address, capacity: 10, region: "", labels: [] });
  const create = (meetingId: string) => run({ type: "createMeeting", meetingId, region: "", requiredLabels: [] });
  return { sm, log, seen, run, register, create, resets: () => resets };
}

/** A RouteLog fed one single-change notice per index, without a state machine. */
function direct(capacity: number) {
  let appliedIndex = 0;
  const queries = {
    get appliedIndex() {
      return appliedIndex;
    },
    getRoute: (meetingId: string) => ({ ok: true, route: { meetingId, nodeId: "a", address: "127.0.0.1:9001", epoch: 1 } }),
    meetingsOf: () => [],
    listMeetings: () => [],
  } as unknown as CoordinatorQueries;
  const log = new RouteLog(() => queries, capacity);
  const apply = (index: number): void => {
    appliedIndex = index;
    const notice = { kind: "applied", outcome: { index, result: { ok: true, type: "createMeeting" }, events: [{ meetingId: `m${index}` }] } };
    log.onNotice(notice as unknown as StateMachineNotice);
  };
  return { log, apply };
}

describe("RouteLog", () => {
  it("records a route per created meeting, a move with a higher epoch, and a removal when it ends", () => {
    const t = setup();
    t.register("a", "127.0.0.1:9001");
    expect(t.seen).toHaveLength(0); // a node with no meetings changes no route
    t.create("m1");
    expect(t.seen.at(-1)!.changes).toEqual([{ meetingId: "m1", nodeId: "a", address: "127.0.0.1:9001", epoch: 1 }]);
    t.register("b", "127.0.0.1:9002");
    const gen = t.sm.queries.getNode("a")!.generation;
    t.run({ type: "setLiveness", nodeId: "a", generation: gen, liveness: "DEAD" });
    expect(t.seen.at(-1)!.changes).toEqual([{ meetingId: "m1", nodeId: "b", address: "127.0.0.1:9002", epoch: 2 }]);
    t.run({ type: "endMeeting", meetingId: "m1" });
    expect(t.seen.at(-1)!.changes).toEqual([{ meetingId: "m1", nodeId: "", address: "", epoch: 0 }]);
    expect(t.seen.map((b) => b.revision)).toEqual([2, 4, 5]);
  });

  it("a node that re-registers at a new address changes its meetings' routes", () => {
    const t = setup();
    t.register("a", "127.0.0.1:9001");
    t.create("m1");
    t.create("m2");
    t.register("a", "127.0.0.1:9100");
    const last = t.seen.at(-1)!;
    const byMeeting = new Map(last.changes.map((c) => [c.meetingId, c]));
    // Whether it keeps them or they wait unassigned, no change points at the old address.
    expect([...byMeeting.keys()].sort()).toEqual(["m1", "m2"]);
    for (const c of last.changes) expect(c.address).not.toBe("127.0.0.1:9001");
  });

  it("resumes a watcher from any kept revision and sends everything after it", () => {
    const t = setup();
    t.register("a");
    for (let i = 0; i < 5; i++) t.create(`m${i}`);
    expect(t.log.canResumeFrom(3)).toBe(true);
    expect(t.log.since(3).map((b) => b.changes[0]!.meetingId)).toEqual(["m2", "m3", "m4"]);
    expect(t.log.canResumeFrom(0)).toBe(false); // 0 means: send the whole table
    expect(t.log.fullTable().map((c) => c.meetingId)).toEqual(["m0", "m1", "m2", "m3", "m4"]);
  });

  it("forgets the oldest changes past its capacity, and then sends those watchers the whole table", () => {
    const t = setup(3);
    t.register("a");
    for (let i = 0; i < 6; i++) t.create(`m${i}`); // revisions 2..7
    expect(t.log.canResumeFrom(2)).toBe(false);
    expect(t.log.canResumeFrom(4)).toBe(true);
    expect(t.log.since(4).map((b) => b.revision)).toEqual([5, 6, 7]);
  });

  it("trimmed far past its capacity, keeps exactly the newest changes and resumes from any of them", () => {
    const { log, apply } = direct(100);
    for (let i = 1; i <= 5_000; i++) apply(i);
    expect(log.canResumeFrom(4_899)).toBe(false);
    expect(log.canResumeFrom(4_900)).toBe(true);
    expect(log.since(4_900).map((b) => b.revision)).toEqual(Array.from({ length: 100 }, (_, k) => 4_901 + k));
    expect(log.since(4_990).map((b) => b.revision)).toEqual(Array.from({ length: 10 }, (_, k) => 4_991 + k));
    expect(log.since(5_000)).toEqual([]);
  });

  it("once full, an apply costs the same however large the capacity (no copy of the kept changes)", () => {
    // Copying the kept batches at every apply made 50,000 applies past a
    // capacity of 100,000 take minutes; without the copy they take milliseconds.
    const { log, apply } = direct(100_000);
    for (let i = 1; i <= 100_000; i++) apply(i);
    const started = performance.now();
    for (let i = 100_001; i <= 150_000; i++) apply(i);
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(log.canResumeFrom(50_000)).toBe(true);
    expect(log.since(149_998).map((b) => b.revision)).toEqual([149_999, 150_000]);
  });

  it("a snapshot install resets its watchers and its resume floor", () => {
    const source = setup();
    source.register("a");
    source.create("m1");
    const t = setup();
    t.register("a");
    t.sm.restore(source.sm.snapshot());
    expect(t.resets()).toBe(1);
    expect(t.log.canResumeFrom(1)).toBe(false);
    expect(t.log.canResumeFrom(2)).toBe(true);
    expect(t.log.fullTable()).toHaveLength(1);
  });
});
