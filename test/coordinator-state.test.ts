/**
 * The coordinator's replicated state machine, driven through its bytes the
 * way a RaftDriver drives it: every command's happy path and every error code
 * of API.md, failover and fencing, drain and deregister, flap damping, and
 * determinism (identical snapshots from identical logs; exact round trips).
 */
import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import type { ApplyOutcome } from "../src/coordinator/command-results.js";
import { type Command, encodeCommand } from "../src/coordinator/commands.js";
import { CoordinatorStateMachine } from "../src/coordinator/coordinator-state-machine.js";
import { BrokenInvariantError, InvalidArgumentError, failureToError } from "../src/coordinator/errors.js";
import {
  validateAddress,
  validateCapacity,
  validateLoad,
  validateMeetingId,
  validateNodeId,
  validateRegion,
  validateSequence,
} from "../src/coordinator/ids.js";
import { validateLabels } from "../src/coordinator/labels.js";
import { formatsAt } from "../src/coordinator/formats.js";
import type { AssignmentEvent } from "../src/coordinator/model.js";
import { type DistributiveOmit, Harness, type Input } from "./support/state-harness.js";
import type { CoordinatorStateConfig } from "../src/coordinator/state-config.js";
import { ConfigError } from "../src/raft/errors.js";
import { SeededRandom } from "../src/raft/random.js";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array | undefined) => (data ? new TextDecoder().decode(data) : undefined);
const brief = (events: readonly AssignmentEvent[]) => events.map((e) => `${e.type} ${e.meetingId}@${e.epoch} ${e.nodeId}${e.checkpoint ? ` cp${e.checkpoint.sequence}` : ""}`);

describe("validators", () => {
  it.each([
    [() => validateMeetingId("a b"), 'meeting_id must match ^[A-Za-z0-9._:-]{1,128}$, got "a b"'],
    [() => validateMeetingId(""), 'meeting_id must match ^[A-Za-z0-9._:-]{1,128}$, got ""'],
    [() => validateMeetingId("x".repeat(129)), /^meeting_id must match/],
    [() => validateMeetingId(7), "meeting_id must be a string, got 7"],
    [() => validateNodeId("n:1"), 'node_id must match ^[A-Za-z0-9._-]{1,64}$, got "n:1"'],
    [() => validateNodeId("n".repeat(65)), /^node_id must match/],
    [() => validateAddress("10.0.0.1"), /^address must be "host:port"/],
    [() => validateAddress("http://h:80"), /^address must be "host:port"/],
    [() => validateAddress("h:0"), /^address must be "host:port"/],
    [() => validateAddress("h:65536"), /^address must be "host:port"/],
    [() => validateAddress("h/x:80"), /^address must be "host:port"/],
    [() => validateCapacity(0), "capacity must be an integer in 1..4294967295, got 0"],
    [() => validateCapacity(2 ** 32), /^capacity must be an integer/],
    [() => validateCapacity(1.5), /^capacity must be an integer/],
    [() => validateRegion("r".repeat(65)), "region must be at most 64 characters, got 65"],
    [() => validateRegion("eu\n"), /^region must not contain control characters/],
    [() => validateLoad(1.01), "load must be a number in 0..1, got 1.01"],
    [() => validateLoad(Number.NaN), /^load must be a number/],
    [() => validateSequence(-1), "sequence must be an integer in 0..2^53-1, got -1"],
    [() => validateSequence(2 ** 60), /^sequence must be an integer/],
    [() => validateLabels(Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, "v"]))), "labels must hold at most 32 labels, got 33"],
    [() => validateLabels({ ["k".repeat(65)]: "v" }), /^labels keys must be 1\.\.64 characters/],
    [() => validateLabels({ k: "v".repeat(257) }), /^labels\["k"\] must be a string of at most 256 characters/],
    [() => validateLabels([["a", "1"], ["a", "2"]]), 'labels must not repeat a key, got "a" twice'],
  ])("refuses a bad value (%#)", (call, message) => {
    expect(call).toThrow(InvalidArgumentError);
    expect(call).toThrow(message);
  });

  it("accepts good values and sorts labels", () => {
    expect(validateAddress("[::1]:8080")).toBe("[::1]:8080");
    expect(validateAddress("meet-1.example.com:443")).toBe("meet-1.example.com:443");
    expect(validateMeetingId("room:42.a_b-c")).toBe("room:42.a_b-c");
    expect(validateLabels({ z: "1", a: "2", __proto__x: "3" })).toEqual([["__proto__x", "3"], ["a", "2"], ["z", "1"]]);
    expect(validateLoad(0)).toBe(0);
    expect(validateLoad(1)).toBe(1);
  });

  it("errors carry the gRPC status name as code", () => {
    for (const code of ["INVALID_ARGUMENT", "NOT_FOUND", "FAILED_PRECONDITION", "RESOURCE_EXHAUSTED"] as const) {
      const err = failureToError({ ok: false, code, message: "m" });
      expect(err.code).toBe(code);
      expect(err.message).toBe("m");
    }
  });

  it("refuses a bad config naming the field", () => {
    expect(() => new CoordinatorStateMachine({ config: { maxCheckpointBytes: 0 } })).toThrow(ConfigError);
    expect(() => new CoordinatorStateMachine({ config: { flapWindowMs: -1 } })).toThrow("flapWindowMs must be an integer at least 1, got -1");
  });
});

describe("register", () => {
  it("registers ALIVE with generation 1, and every Register of that id raises it", () => {
    const h = new Harness();
    expect(h.register("n1", { capacity: 5, region: "eu", labels: { gpu: "a100" }, address: "m1.local:9001" })).toBe(1);
    expect(h.q.listNodes()).toMatchObject([
      { nodeId: "n1", address: "m1.local:9001", capacity: 5, region: "eu", labels: [["gpu", "a100"]], state: "ALIVE", meetings: 0, generation: 1 },
    ]);
    expect(h.register("n1", { capacity: 7 })).toBe(2);
    expect(h.q.getNode("n1")).toMatchObject({ capacity: 7, region: "", generation: 2 });
  });

  it("refuses invalid fields before proposing, and again in apply", () => {
    const h = new Harness();
    const bad = { type: "register", nowMs: 1, nodeId: "bad id", address: "h:1", capacity: 1, region: "", labels: [] } as const;
    expect(() => encodeCommand(bad)).toThrow('node_id must match ^[A-Za-z0-9._-]{1,64}$, got "bad id"');
    // Bytes built around the validator still meet it in apply, as data.
    const raw = new Packr({ useRecords: false }).pack({ v: 1, ...bad });
    const { result, events } = h.sm.apply(raw, 1);
    expect(result).toEqual({ ok: false, code: "INVALID_ARGUMENT", message: 'node_id must match ^[A-Za-z0-9._-]{1,64}$, got "bad id"' });
    expect(events).toEqual([]);
    expect(h.q.listNodes()).toEqual([]);
  });
});

describe("createMeeting (GetRoute create=true) and routes", () => {
  it("creates at epoch 1 on a node, then returns the same route with created=false", () => {
    const h = new Harness();
    h.register("n1");
    const first = h.create("m1");
    expect(first).toMatchObject({ created: true, route: { meetingId: "m1", nodeId: "n1", epoch: 1 } });
    expect(first.route.address).toBe(h.q.getNode("n1")!.address);
    expect(h.create("m1")).toEqual({ ...first, created: false });
    expect(h.q.getRoute("m1")).toEqual({ ok: true, route: first.route });
    expect(h.q.getNode("n1")!.meetings).toBe(1);
  });

  it("gives two concurrent creates of one meeting the same node", () => {
    const h = new Harness();
    for (const id of ["n1", "n2", "n3"]) h.register(id);
    h.create("warmup"); // n1 now has one: n2 and n3 are the least loaded
    // Two gateways propose at once; the log orders them, and the second finds the first's.
    const a = h.run({ type: "createMeeting", meetingId: "m1", region: "", requiredLabels: [] });
    const b = h.run({ type: "createMeeting", meetingId: "m1", region: "", requiredLabels: [] });
    expect(a.result).toMatchObject({ ok: true, created: true, route: { nodeId: "n2" } });
    expect(b.result).toMatchObject({ ok: true, created: false, route: { nodeId: "n2", epoch: 1 } });
    expect(b.events).toEqual([]);
  });

  it("emits ASSIGNED to the chosen node", () => {
    const h = new Harness();
    h.register("n1");
    expect(brief(h.run({ type: "createMeeting", meetingId: "m1", region: "", requiredLabels: [] }).events)).toEqual(["ASSIGNED m1@1 n1"]);
  });

  it("honours the region hint and the label selector", () => {
    const h = new Harness();
    h.register("us1", { region: "us" });
    h.register("eu1", { region: "eu", labels: { gpu: "a100" } });
    h.register("eu2", { region: "eu" });
    expect(h.create("m1", { region: "eu" }).route.nodeId).toBe("eu1");
    expect(h.create("m2", { region: "eu" }).route.nodeId).toBe("eu2");
    expect(h.create("m3", { labels: { gpu: "a100" } }).route.nodeId).toBe("eu1");
    expect(h.create("m4", { region: "ap" }).route.nodeId).toBe("us1");
  });

  it("RESOURCE_EXHAUSTED when no live node has room, and nothing is stored", () => {
    const h = new Harness();
    expect(h.fail({ type: "createMeeting", meetingId: "m0", region: "", requiredLabels: [] })).toMatchObject({ code: "RESOURCE_EXHAUSTED" });
    h.register("n1", { capacity: 1 });
    h.create("m1");
    const f = h.fail({ type: "createMeeting", meetingId: "m2", region: "", requiredLabels: [] });
    expect(f).toEqual({ ok: false, code: "RESOURCE_EXHAUSTED", message: "no live node has room (1 nodes: 1 full)" });
    expect(h.q.getRoute("m2")).toMatchObject({ ok: false, code: "NOT_FOUND" });
    expect(h.q.listMeetings().map((r) => r.meetingId)).toEqual(["m1"]);
  });

  it("NOT_FOUND for a route to an unknown meeting", () => {
    const h = new Harness();
    expect(h.q.getRoute("nope")).toEqual({ ok: false, code: "NOT_FOUND", message: 'meeting "nope" is not assigned' });
  });

  it("spreads a storm of 1,000 creates over 3 equal nodes within ±1", () => {
    const h = new Harness();
    for (const id of ["n1", "n2", "n3"]) h.register(id, { capacity: 1_000 });
    for (let i = 0; i < 1_000; i++) {
      h.nowMs++;
      h.sm.apply(encodeCommand({ type: "createMeeting", nowMs: h.nowMs, meetingId: `m${i}`, region: "", requiredLabels: [] }), ++h.index);
    }
    const counts = h.q.listNodes().map((n) => n.meetings);
    expect(counts.reduce((a, b) => a + b)).toBe(1_000);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    expect(h.q.listMeetings("n2")).toHaveLength(counts[1]!);
  });
});

describe("endMeeting", () => {
  it("removes the meeting and its checkpoint and revokes it from its host", () => {
    const h = new Harness();
    h.register("n1");
    h.create("m1");
    h.ok(h.save("m1", 1) as Input & { type: "saveCheckpoint" });
    const { result, events } = h.run({ type: "endMeeting", meetingId: "m1" });
    expect(result).toEqual({ ok: true, type: "endMeeting", meetingId: "m1" });
    expect(brief(events)).toEqual(["REVOKED m1@1 n1"]);
    expect(h.q.getCheckpoint("m1")).toBeUndefined();
    expect(h.q.getNode("n1")!.meetings).toBe(0);
    expect(h.fail({ type: "endMeeting", meetingId: "m1" })).toEqual({ ok: false, code: "NOT_FOUND", message: "meeting m1 does not exist" });
  });
});

describe("saveCheckpoint", () => {
  function setup(config: Partial<CoordinatorStateConfig> = {}) {
    const h = new Harness(config);
    h.register("n1");
    h.register("n2");
    h.create("m1"); // on n1
    return h;
  }
  const saveOk = (h: Harness, input: Input) => h.ok(input as Input & { type: "saveCheckpoint" });

  it("stores the state; an equal sequence with the same bytes is idempotent; GetCheckpoint returns it", () => {
    const h = setup();
    h.nowMs = 2_000_000;
    expect(saveOk(h, h.save("m1", 3))).toEqual({ ok: true, type: "saveCheckpoint", sequence: 3, stored: true });
    expect(saveOk(h, h.save("m1", 3))).toMatchObject({ sequence: 3, stored: false });
    expect(h.q.getCheckpoint("m1")).toMatchObject({ meetingId: "m1", nodeId: "n1", epoch: 1, sequence: 3, savedAtMs: 2_000_000 });
    expect(text(h.q.getCheckpoint("m1")!.state)).toBe("m1@3");
    expect(saveOk(h, h.save("m1", 4))).toMatchObject({ sequence: 4, stored: true });
  });

  it.each([
    ["a lower sequence", (h: Harness) => h.save("m1", 4), /sequence 4 is lower than the stored 5/],
    // Not a re-send: acknowledging it would report a save that never happened.
    ["an equal sequence with different bytes", (h: Harness) => h.save("m1", 5, { state: bytes("other") }), /sequence 5 is already stored with different state/],
    ["a stale generation", (h: Harness) => h.save("m1", 6, { generation: 99 }), /generation 99 is stale; node n1 is at generation 1/],
    ["a wrong epoch", (h: Harness) => h.save("m1", 6, { epoch: 2 }), /n1 at epoch 2 does not own meeting m1: it is owned by n1 at epoch 1/],
    ["a node that does not own it", (h: Harness) => h.save("m1", 6, { nodeId: "n2" }), /n2 at epoch 1 does not own meeting m1/],
    ["an unknown node", (h: Harness) => h.save("m1", 6, { nodeId: "ghost", generation: 1 }), /node ghost is not registered/],
    ["an unknown meeting", (h: Harness) => h.save("m9", 6, { nodeId: "n1", epoch: 1 }), /meeting m9 does not exist/],
  ])("FAILED_PRECONDITION for %s, and nothing changes", (_why, input, message) => {
    const h = setup();
    saveOk(h, h.save("m1", 5));
    const before = h.q.getCheckpoint("m1");
    const f = h.fail(input(h));
    expect(f.code).toBe("FAILED_PRECONDITION");
    expect(f.message).toMatch(message);
    expect(h.q.getCheckpoint("m1")).toBe(before);
  });

  it("FAILED_PRECONDITION for a node declared dead", () => {
    const h = setup();
    h.run({ type: "setLiveness", nodeId: "n2", generation: 1, liveness: "DEAD" });
    const f = h.fail(h.save("m1", 1, { nodeId: "n2", generation: 1, epoch: 1 }));
    expect(f).toMatchObject({ code: "FAILED_PRECONDITION", message: "node n2 was declared dead; it must register again" });
  });

  it("RESOURCE_EXHAUSTED over the size limit; at the limit is fine", () => {
    const h = setup({ maxCheckpointBytes: 16 });
    expect(saveOk(h, h.save("m1", 1, { state: new Uint8Array(16) }))).toMatchObject({ stored: true });
    const f = h.fail(h.save("m1", 2, { state: new Uint8Array(17) }));
    expect(f).toEqual({ ok: false, code: "RESOURCE_EXHAUSTED", message: "state is 17 bytes, over the limit of 16 bytes" });
    expect(h.q.getCheckpoint("m1")!.sequence).toBe(1);
  });

  it("defaults the size limit to 256 KiB", () => {
    const h = setup();
    expect(h.run(h.save("m1", 1, { state: new Uint8Array(256 * 1024) })).result.ok).toBe(true);
    expect(h.fail(h.save("m1", 2, { state: new Uint8Array(256 * 1024 + 1) })).code).toBe("RESOURCE_EXHAUSTED");
  });
});

describe("liveness and failover", () => {
  function cluster() {
    const h = new Harness();
    h.register("n1", { capacity: 4 });
    h.register("n2", { capacity: 4 });
    h.register("n3", { capacity: 4 });
    for (let i = 0; i < 6; i++) h.create(`m${i}`); // two per node
    return h;
  }

  it("NOT_FOUND unknown node, FAILED_PRECONDITION stale generation", () => {
    const h = cluster();
    expect(h.fail({ type: "setLiveness", nodeId: "n9", generation: 1, liveness: "DEAD" }).code).toBe("NOT_FOUND");
    h.register("n1", { capacity: 4 }); // generation 2
    const f = h.fail({ type: "setLiveness", nodeId: "n1", generation: 1, liveness: "DEAD" });
    expect(f).toMatchObject({ code: "FAILED_PRECONDITION", message: "generation 1 is stale; node n1 is at generation 2" });
    expect(h.q.getNode("n1")!.state).toBe("ALIVE");
  });

  it("SUSPECT keeps its meetings but gets no new ones; ALIVE again takes them", () => {
    const h = cluster();
    h.ok({ type: "setLiveness", nodeId: "n1", generation: 1, liveness: "SUSPECT" });
    expect(h.q.getNode("n1")).toMatchObject({ state: "SUSPECT", meetings: 2 });
    expect(h.create("x1").route.nodeId).not.toBe("n1");
    expect(h.create("x2").route.nodeId).not.toBe("n1");
    h.ok({ type: "setLiveness", nodeId: "n1", generation: 1, liveness: "ALIVE" });
    expect(h.create("x3").route.nodeId).toBe("n1");
  });

  it("DEAD moves every meeting to live nodes with room, epoch + 1, with its checkpoint, in one command", () => {
    const h = cluster();
    const onN1 = h.q.listMeetings("n1").map((r) => r.meetingId);
    expect(onN1).toEqual(["m0", "m3"]);
    h.ok(h.save("m0", 7) as Input & { type: "saveCheckpoint" });
    const { result, events } = h.kill("n1");
    expect(result).toMatchObject({ ok: true, liveness: "DEAD", changed: true, moved: 2, unassigned: 0 });
    expect(brief(events)).toEqual(["REVOKED m0@1 n1", "ASSIGNED m0@2 n2 cp7", "REVOKED m3@1 n1", "ASSIGNED m3@2 n3"]);
    expect(h.q.getNode("n1")).toMatchObject({ state: "DEAD", meetings: 0 });
    expect(h.q.getRoute("m0")).toMatchObject({ ok: true, route: { nodeId: "n2", epoch: 2 } });
    expect(h.q.meetingsOf("n2").find((a) => a.meetingId === "m0")).toMatchObject({ epoch: 2, checkpoint: { sequence: 7, nodeId: "n1", epoch: 1 } });
    // The new owner continues from the sequence it received.
    expect(h.fail(h.save("m0", 6)).code).toBe("FAILED_PRECONDITION");
    expect(h.run(h.save("m0", 8)).result).toMatchObject({ ok: true, sequence: 8 });
  });

  it("a dead node must register again: ALIVE is refused, DEAD again is a no-op, Heartbeat's check fails", () => {
    const h = cluster();
    h.kill("n1");
    expect(h.fail({ type: "setLiveness", nodeId: "n1", generation: 1, liveness: "ALIVE" })).toMatchObject({
      code: "FAILED_PRECONDITION",
      message: "node n1 was declared dead; it must register again",
    });
    expect(h.kill("n1").result).toMatchObject({ ok: true, changed: false, moved: 0 });
    expect(h.q.checkSession("n1", 1)).toMatchObject({ ok: false, code: "FAILED_PRECONDITION" });
    expect(h.q.checkSession("n9", 1)).toMatchObject({ ok: false, code: "NOT_FOUND" });
    expect(h.register("n1", { capacity: 4 })).toBe(2);
    expect(h.q.checkSession("n1", 1)).toMatchObject({ ok: false, code: "FAILED_PRECONDITION" });
    expect(h.q.checkSession("n1", 2)).toMatchObject({ ok: true, node: { state: "ALIVE", draining: false } });
  });

  it("meetings with no room wait unassigned with their checkpoint and are placed when capacity returns", () => {
    const h = new Harness();
    h.register("n1", { capacity: 2 });
    h.register("n2", { capacity: 1 });
    h.create("a");
    h.create("b"); // a, c on n1; b on n2
    h.create("c");
    h.ok(h.save("c", 3) as Input & { type: "saveCheckpoint" });
    expect(h.kill("n1").result).toMatchObject({ moved: 0, unassigned: 2 });
    expect(h.sm.unassignedMeetings()).toEqual(["a", "c"]);
    expect(h.q.getRoute("c")).toMatchObject({ ok: false, code: "RESOURCE_EXHAUSTED" });
    expect(h.q.listMeetings()).toContainEqual({ meetingId: "c", nodeId: "", address: "", epoch: 1 });
    expect(h.fail({ type: "createMeeting", meetingId: "c", region: "", requiredLabels: [] }).code).toBe("RESOURCE_EXHAUSTED");
    // Saving to a meeting that waits is refused: nobody owns it.
    expect(h.fail(h.save("c", 4, { nodeId: "n2", epoch: 1 })).code).toBe("FAILED_PRECONDITION");
    const { events } = h.run({ type: "register", nodeId: "n3", address: "h:1", capacity: 5, region: "", labels: [] });
    expect(brief(events)).toEqual(["ASSIGNED a@2 n3", "ASSIGNED c@2 n3 cp3"]);
    expect(h.sm.unassignedMeetings()).toEqual([]);
  });

  it("epochs rise on every move", () => {
    const h = new Harness();
    for (const id of ["n1", "n2"]) h.register(id);
    h.create("m");
    const epochs = [h.q.getRoute("m")];
    for (let round = 0; round < 6; round++) {
      const owner = h.ownerOf("m");
      if (round % 2 === 0) h.kill(owner);
      else h.ok({ type: "drainNode", nodeId: owner, migrate: true });
      h.register(owner); // back, fresh
      epochs.push(h.q.getRoute("m"));
    }
    const seen = epochs.map((r) => (r.ok ? r.route.epoch : -1));
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it("a zombie (old generation) cannot overwrite a moved meeting's checkpoint", () => {
    const h = new Harness();
    h.register("n1");
    h.register("n2");
    h.create("m"); // n1, epoch 1
    h.ok(h.save("m", 5) as Input & { type: "saveCheckpoint" });
    h.kill("n1"); // m → n2 at epoch 2
    const zombie = { nodeId: "n1", generation: 1, epoch: 1, state: bytes("zombie") };
    expect(h.fail(h.save("m", 6, zombie)).code).toBe("FAILED_PRECONDITION");
    expect(h.fail(h.save("m", 6, { ...zombie, epoch: 2 })).code).toBe("FAILED_PRECONDITION");
    h.register("n1"); // the zombie comes back as generation 2: still not the owner
    expect(h.fail(h.save("m", 6, { ...zombie, generation: 2 })).code).toBe("FAILED_PRECONDITION");
    expect(h.fail(h.save("m", 6, { ...zombie, generation: 2, epoch: 2 })).code).toBe("FAILED_PRECONDITION");
    expect(h.q.getCheckpoint("m")).toMatchObject({ nodeId: "n1", epoch: 1, sequence: 5 });
    expect(text(h.q.getCheckpoint("m")!.state)).toBe("m@5");
    expect(h.run(h.save("m", 6)).result).toMatchObject({ ok: true });
    expect(h.q.getCheckpoint("m")).toMatchObject({ nodeId: "n2", epoch: 2, sequence: 6 });
  });

  it("a node that registers again before it is declared dead keeps its meetings, each as a new tenure: epoch + 1, the last checkpoint, the old generation fenced", () => {
    const h = new Harness();
    h.raiseClusterVersion();
    h.register("n1");
    h.create("a");
    h.create("b");
    h.ok(h.save("a", 7) as Input & { type: "saveCheckpoint" });
    const again = h.run({ type: "register", nodeId: "n1", address: "10.0.0.1:9001", capacity: 10, region: "", labels: [] });
    expect(again.result).toMatchObject({ ok: true, generation: 2 });
    expect(h.q.auditLog(1)[0]!.summary).toContain("kept 2 meetings, each at a new epoch");
    // One event pair per meeting, in meeting id order: REVOKED to the old incarnation, ASSIGNED to the new.
    expect(again.events.map((e) => `${e.type} ${e.meetingId}@${e.epoch} g${e.generation}${e.checkpoint ? ` cp${e.checkpoint.sequence}` : ""}`)).toEqual([
      "REVOKED a@1 g1",
      "ASSIGNED a@2 g2 cp7",
      "REVOKED b@1 g1",
      "ASSIGNED b@2 g2",
    ]);
    expect(h.q.getRoute("a")).toMatchObject({ ok: true, route: { nodeId: "n1", epoch: 2 } });
    expect(h.q.meetingsOf("n1").map((a) => `${a.meetingId}@${a.epoch}`)).toEqual(["a@2", "b@2"]);
    // The old incarnation's late write is fenced by generation, and the new one's at the old epoch by epoch.
    expect(h.fail(h.save("a", 8, { generation: 1, epoch: 1 })).code).toBe("FAILED_PRECONDITION");
    expect(h.fail(h.save("a", 8, { generation: 2, epoch: 1 })).code).toBe("FAILED_PRECONDITION");
    expect(h.run(h.save("a", 8)).result).toMatchObject({ ok: true });
    expect(h.q.getCheckpoint("a")).toMatchObject({ nodeId: "n1", epoch: 2, sequence: 8 });
  });

  it("a Register from the incarnation registered now is a duplicate: same generation, nothing changes; a dead or other incarnation gets a new one", () => {
    const h = new Harness();
    h.raiseClusterVersion();
    const reg = (incarnation?: string) =>
      h.ok({ type: "register", nodeId: "n1", address: "10.0.0.1:9001", capacity: 10, region: "", labels: [], ...(incarnation ? { incarnation } : {}) }).generation;
    expect(reg("proc-a")).toBe(1);
    h.create("m");
    // A retry whose first answer was lost, or a late duplicate: the same generation, the meeting untouched.
    expect(reg("proc-a")).toBe(1);
    expect(h.q.getRoute("m")).toMatchObject({ ok: true, route: { nodeId: "n1", epoch: 1 } });
    expect(h.q.auditLog(1)[0]!.summary).toContain("already registered by this incarnation");
    // Another process under the same id: a new generation (and a new tenure of its meetings).
    expect(reg("proc-b")).toBe(2);
    expect(reg("proc-a")).toBe(3); // the old process, once the new one registered: fenced it in turn
    // Declared dead: the same process must get a new generation.
    h.kill("n1");
    expect(reg("proc-a")).toBe(4);
    // No token (older agents): every Register is a new generation, as before.
    expect(reg()).toBe(5);
    expect(reg()).toBe(6);
    // The token survives a snapshot and restore.
    expect(reg("proc-c")).toBe(7);
    const restored = new CoordinatorStateMachine();
    restored.restore(h.sm.snapshot());
    expect(restored.queries.getNode("n1")?.generation).toBe(7);
    const again = restored.apply(encodeCommand({ type: "register", nowMs: h.nowMs, nodeId: "n1", address: "10.0.0.1:9001", capacity: 10, region: "", labels: [], incarnation: "proc-c" }), h.index + 1);
    expect(again.result).toMatchObject({ ok: true, generation: 7 });
  });

  it("the replicated clock never goes backwards when a new leader's clock lags", () => {
    const h = new Harness();
    h.nowMs = 5_000;
    h.register("n1");
    h.nowMs = 4_000;
    h.create("m");
    h.ok(h.save("m", 1) as Input & { type: "saveCheckpoint" });
    expect(h.q.clockMs).toBe(5_000);
    expect(h.q.getCheckpoint("m")!.savedAtMs).toBe(5_000);
  });
});

describe("flap damping", () => {
  const config = { flapMaxDeaths: 2, flapWindowMs: 10_000, flapHoldOutMs: 60_000 };

  it("holds a node that died more than K times within W out of placement until the hold-out ends", () => {
    const h = new Harness(config);
    h.register("steady", { capacity: 100 });
    h.register("flappy", { capacity: 100 });
    for (let death = 1; death <= 3; death++) {
      h.nowMs += 1_000;
      const { result } = h.kill("flappy");
      h.register("flappy", { capacity: 100 });
      expect(result).toMatchObject({ heldOutUntilMs: death === 3 ? h.nowMs + 60_000 : 0 });
    }
    const heldUntil = h.q.getNode("flappy")!.heldOutUntilMs;
    expect(heldUntil).toBe(h.nowMs + 60_000);
    expect(h.q.getNode("flappy")!.state).toBe("ALIVE"); // registered and reachable, just not chosen
    for (let i = 0; i < 5; i++) expect(h.create(`m${i}`).route.nodeId).toBe("steady");
    h.nowMs = heldUntil;
    expect(h.create("later").route.nodeId).toBe("flappy");
  });

  it("does not hold out a node whose deaths are spread wider than W", () => {
    const h = new Harness(config);
    h.register("n", { capacity: 5 });
    for (let death = 1; death <= 5; death++) {
      h.nowMs += 6_000;
      expect(h.kill("n").result).toMatchObject({ heldOutUntilMs: 0 });
      h.register("n", { capacity: 5 });
    }
    expect(h.create("m").route.nodeId).toBe("n");
  });

  it("a held-out node still takes meetings when no other node can: nothing waits out the hold-out", () => {
    const h = new Harness(config);
    h.register("only", { capacity: 5 });
    h.create("m");
    for (let death = 1; death <= 3; death++) {
      h.kill("only");
      h.register("only", { capacity: 5 });
    }
    expect(h.q.getNode("only")!.heldOutUntilMs).toBeGreaterThan(h.nowMs);
    expect(h.sm.unassignedMeetings()).toEqual([]);
    expect(h.q.getRoute("m")).toMatchObject({ ok: true, route: { nodeId: "only", epoch: 4 } });
    expect(h.create("new").route.nodeId).toBe("only");
    // Once another node registers, it is preferred.
    h.register("steady", { capacity: 5 });
    expect(h.create("newer").route.nodeId).toBe("steady");
  });
});

describe("drainNode and deregister", () => {
  function setup() {
    const h = new Harness();
    h.register("n1", { capacity: 3 });
    h.register("n2", { capacity: 3 });
    for (const m of ["a", "b", "c", "d"]) h.create(m); // a, c on n1; b, d on n2
    return h;
  }

  it("drain without migrate: no new meetings, existing ones stay", () => {
    const h = setup();
    expect(h.ok({ type: "drainNode", nodeId: "n1", migrate: false })).toEqual({ ok: true, type: "drainNode", moved: 0, stayed: 2 });
    expect(h.q.getNode("n1")).toMatchObject({ state: "DRAINING", draining: true, meetings: 2 });
    expect(h.q.checkSession("n1", 1)).toMatchObject({ ok: true, node: { draining: true } });
    expect(h.create("e").route.nodeId).toBe("n2");
    expect(h.fail({ type: "createMeeting", meetingId: "f", region: "", requiredLabels: [] }).code).toBe("RESOURCE_EXHAUSTED");
    expect(h.ownerOf("a")).toBe("n1");
  });

  it("drain with migrate moves what fits now, with checkpoints; the rest stays", () => {
    const h = setup();
    h.ok(h.save("a", 9) as Input & { type: "saveCheckpoint" });
    const { result, events } = h.run({ type: "drainNode", nodeId: "n1", migrate: true });
    expect(result).toEqual({ ok: true, type: "drainNode", moved: 1, stayed: 1 });
    expect(brief(events)).toEqual(["REVOKED a@1 n1", "ASSIGNED a@2 n2 cp9"]);
    expect(h.ownerOf("c")).toBe("n1");
    expect(h.fail({ type: "drainNode", nodeId: "n9", migrate: true }).code).toBe("NOT_FOUND");
  });

  it("deregister moves its meetings, forgets the node, and the next Register still raises the generation", () => {
    const h = setup();
    h.register("n3", { capacity: 3 });
    h.ok(h.save("c", 2) as Input & { type: "saveCheckpoint" });
    expect(h.fail({ type: "deregister", nodeId: "n1", generation: 7 }).code).toBe("FAILED_PRECONDITION");
    const { result, events } = h.run({ type: "deregister", nodeId: "n1", generation: 1 });
    expect(result).toEqual({ ok: true, type: "deregister", moved: 2, unassigned: 0 });
    expect(brief(events)).toEqual(["REVOKED a@1 n1", "ASSIGNED a@2 n3", "REVOKED c@1 n1", "ASSIGNED c@2 n3 cp2"]);
    expect(h.q.getNode("n1")).toBeUndefined();
    expect(h.q.listNodes().map((n) => n.nodeId)).toEqual(["n2", "n3"]);
    expect(h.fail({ type: "deregister", nodeId: "n1", generation: 1 }).code).toBe("NOT_FOUND");
    expect(h.q.checkSession("n1", 1)).toMatchObject({ code: "NOT_FOUND" });
    expect(h.register("n1")).toBe(2);
  });

  it("deregister leaves meetings no node has room for waiting unassigned", () => {
    const h = setup();
    expect(h.ok({ type: "deregister", nodeId: "n1", generation: 1 })).toMatchObject({ moved: 1, unassigned: 1 });
    expect(h.sm.unassignedMeetings()).toEqual(["c"]);
  });
});

describe("the state machine", () => {
  it("refuses undecodable bytes and malformed versions as INVALID_ARGUMENT, changing nothing", () => {
    const h = new Harness();
    h.register("n1");
    const before = queriesOf(h.sm);
    const garbage = h.sm.apply(new Uint8Array([0xc1, 0xff, 0x00]), ++h.index);
    expect(garbage).toMatchObject({ result: { ok: false, code: "INVALID_ARGUMENT" }, events: [] });
    const pack = (v: object) => new Packr({ useRecords: false }).pack(v);
    const malformed = h.sm.apply(pack({ v: 0, type: "register" }), ++h.index);
    expect(malformed.result).toEqual({ ok: false, code: "INVALID_ARGUMENT", message: "command version must be 1, 2 or 3, got 0" });
    const termless = h.sm.apply(pack({ v: 2, type: "register" }), ++h.index);
    expect(termless.result).toEqual({ ok: false, code: "INVALID_ARGUMENT", message: "term must be an integer in 1..2^53-1, got undefined" });
    // Version 1 knows no setClusterVersion: refused as a release before cluster versions refuses it.
    const early = h.sm.apply(pack({ v: 1, type: "setClusterVersion", nowMs: 1, version: 2 }), ++h.index);
    expect(early.result).toMatchObject({ ok: false, code: "INVALID_ARGUMENT", message: "command type setClusterVersion needs command version 2" });
    // Version 2 knows no planned moves: refused as a release of cluster version 2 refuses them.
    const move = h.sm.apply(pack({ v: 2, term: 1, type: "startMove", nowMs: 1, meetingId: "m", toNodeId: "", timeoutMs: 1_000 }), ++h.index);
    expect(move.result).toMatchObject({ ok: false, code: "INVALID_ARGUMENT", message: "command type startMove needs command version 3" });
    const after = queriesOf(h.sm);
    expect({ ...after, audit: [], appliedIndex: 0 }).toEqual({ ...before, audit: [], appliedIndex: 0 });
    expect(after.audit.at(-1)).toMatchObject({ kind: "invalid", ok: false, code: "INVALID_ARGUMENT" });
  });

  it("throws on an index applied twice: a broken invariant", () => {
    const h = new Harness();
    h.register("n1");
    expect(() => h.sm.apply(encodeCommand({ type: "placeUnassigned", nowMs: 1 }), h.index)).toThrow(BrokenInvariantError);
  });

  it("keeps an audit entry per applied command, the newest N", () => {
    const h = new Harness({ auditLogSize: 3 });
    h.register("n1");
    h.create("m1");
    h.fail({ type: "endMeeting", meetingId: "zz" });
    h.kill("n1");
    const audit = h.q.auditLog();
    expect(audit.map((a) => [a.index, a.kind, a.ok, a.code])).toEqual([
      [2, "createMeeting", true, ""],
      [3, "endMeeting", false, "NOT_FOUND"],
      [4, "setLiveness", true, ""],
    ]);
    expect(audit[0]!.summary).toBe("m1 → n1 epoch 1 (created)");
    expect(audit[2]!.summary).toBe("n1 generation 1 ALIVE → DEAD: moved 0, unassigned 1");
    expect(h.q.auditLog(1)).toEqual([audit[2]]);
  });

  it("tells subscribers of every apply and restore", () => {
    const h = new Harness();
    const seen: string[] = [];
    const off = h.sm.subscribe((n) => seen.push(n.kind === "applied" ? `applied ${n.outcome.index}` : `restored ${n.appliedIndex}`));
    h.register("n1");
    h.sm.restore(h.sm.snapshot());
    off();
    h.register("n2");
    expect(seen).toEqual(["applied 1", "restored 1"]);
  });
});

// ---- determinism over random logs ------------------------------------------------

const RANDOM_CONFIG: Partial<CoordinatorStateConfig> = {
  maxCheckpointBytes: 48,
  burstWindowMs: 1_000,
  flapMaxDeaths: 1,
  flapWindowMs: 20_000,
  flapHoldOutMs: 15_000,
  auditLogSize: 64,
};

/**
 * The next random command, built from what `sm` holds now so that most are
 * valid (current generations and epochs) and some are stale or bogus.
 */
function randomCommand(rng: SeededRandom, sm: CoordinatorStateMachine, nowMs: number): Uint8Array {
  const q = sm.queries;
  const nodeId = `n${rng.intBelow(6)}`;
  const meetingId = `m${rng.intBelow(60)}`;
  const generation = (q.getNode(nodeId)?.generation ?? 1) + (rng.chance(0.1) ? -1 : 0) || 1;
  const labels = rng.chance(0.3) ? validateLabels({ tier: rng.pick(["gold", "silver"]) }) : validateLabels({});
  const region = rng.pick(["", "", "eu", "us"]);
  const roll = rng.intBelow(100);
  let command: Command;
  if (roll < 3) return rng.chance(0.5) ? new Uint8Array([0xc1]) : new TextEncoder().encode("not a command");
  if (roll < 15) {
    command = { type: "register", nowMs, nodeId, address: `10.0.0.${rng.intBelow(9)}:${1000 + rng.intBelow(9)}`, capacity: 1 + rng.intBelow(8), region, labels };
  } else if (roll < 27) {
    command = { type: "setLiveness", nowMs, nodeId, generation, liveness: rng.pick(["ALIVE", "SUSPECT", "DEAD", "DEAD"] as const) };
  } else if (roll < 55) {
    command = { type: "createMeeting", nowMs, meetingId, region, requiredLabels: labels };
  } else if (roll < 62) {
    command = { type: "endMeeting", nowMs, meetingId };
  } else if (roll < 88) {
    const route = q.getRoute(meetingId);
    const owner = route.ok && !rng.chance(0.1) ? route.route.nodeId : nodeId;
    const stored = q.getCheckpoint(meetingId)?.sequence ?? 0;
    const state = new Uint8Array(rng.intBelow(56)).map(() => rng.intBelow(256));
    command = {
      type: "saveCheckpoint",
      nowMs,
      nodeId: owner,
      generation: (q.getNode(owner)?.generation ?? 1) + (rng.chance(0.1) ? 1 : 0),
      meetingId,
      epoch: (route.ok ? route.route.epoch : 1) + (rng.chance(0.1) ? -1 : 0) || 1,
      sequence: Math.max(0, stored + rng.intBelow(4) - 1),
      state,
    };
  } else if (roll < 93) {
    command = { type: "drainNode", nowMs, nodeId, migrate: rng.chance(0.5) };
  } else if (roll < 97) {
    command = { type: "deregister", nowMs, nodeId, generation };
  } else {
    command = { type: "placeUnassigned", nowMs };
  }
  return encodeCommand(command);
}

function queriesOf(sm: CoordinatorStateMachine) {
  const q = sm.queries;
  const nodes = q.listNodes();
  const meetings = q.listMeetings();
  return {
    clockMs: q.clockMs,
    appliedIndex: q.appliedIndex,
    nodes,
    meetings,
    byNode: nodes.map((n) => [n.nodeId, q.listMeetings(n.nodeId), q.meetingsOf(n.nodeId), q.checkSession(n.nodeId, n.generation)]),
    routes: meetings.map((m) => q.getRoute(m.meetingId)),
    checkpoints: meetings.map((m) => q.getCheckpoint(m.meetingId) ?? null),
    unassigned: sm.unassignedMeetings(),
    audit: q.auditLog(),
  };
}

/** Feeds `count` random commands to every machine in `sms`, built against the first; returns the outcomes of the first. */
function feed(rng: SeededRandom, sms: CoordinatorStateMachine[], startIndex: number, count: number, clock: { nowMs: number }): ApplyOutcome[] {
  const outcomes: ApplyOutcome[] = [];
  for (let i = 0; i < count; i++) {
    clock.nowMs += rng.chance(0.05) ? -rng.intBelow(3_000) : rng.intBelow(2_500);
    const command = randomCommand(rng, sms[0]!, Math.max(0, clock.nowMs));
    const results = sms.map((sm) => sm.apply(command, startIndex + i));
    for (const r of results.slice(1)) expect(r).toEqual(results[0]);
    sms[0]!.checkInvariants();
    outcomes.push(results[0]!);
  }
  return outcomes;
}

describe("determinism", () => {
  it.each([1, 2, 3])("two members fed the same 1,000 random commands hold byte-identical snapshots (seed %i)", (seed) => {
    const a = new CoordinatorStateMachine({ config: RANDOM_CONFIG });
    const b = new CoordinatorStateMachine({ config: RANDOM_CONFIG });
    const outcomes = feed(new SeededRandom(seed), [a, b], 1, 1_000, { nowMs: 1_000_000 });
    expect(Buffer.from(a.snapshot()).equals(Buffer.from(b.snapshot()))).toBe(true);
    // The log exercised what it should.
    const seen = new Set(outcomes.map((o) => (o.result.ok ? o.result.type : o.result.code)));
    for (const kind of ["register", "setLiveness", "createMeeting", "endMeeting", "saveCheckpoint", "drainNode", "deregister"]) expect(seen).toContain(kind);
    for (const code of ["INVALID_ARGUMENT", "NOT_FOUND", "FAILED_PRECONDITION", "RESOURCE_EXHAUSTED"]) expect(seen).toContain(code);
  });

  it("a snapshot encoded in steps holds the state as of its start while later commands apply between its steps", async () => {
    const rng = new SeededRandom(6);
    const clock = { nowMs: 1_000_000 };
    const a = new CoordinatorStateMachine({ config: RANDOM_CONFIG });
    const b = new CoordinatorStateMachine({ config: RANDOM_CONFIG });
    feed(rng, [a, b], 1, 1_000, clock);
    const expected = b.snapshot();
    const steps = a.snapshotSteps();
    let step = steps.next();
    for (let k = 0; !step.done; k++) {
      feed(rng, [a, b], 1_001 + k * 60, 60, clock);
      step = steps.next();
    }
    expect(Buffer.from(step.value).equals(Buffer.from(expected))).toBe(true);
    // Sharing bytes with the snapshot kept every later save as it was.
    expect(Buffer.from(a.snapshot()).equals(Buffer.from(b.snapshot()))).toBe(true);
    expect(queriesOf(a)).toEqual(queriesOf(b));
  });

  it("a state larger than one encoding step (2,500 nodes, 12,000 meetings, 6,000 checkpoints) encodes the same in steps and at once, and round-trips", async () => {
    const sm = new CoordinatorStateMachine();
    let index = 0;
    const run = (c: DistributiveOmit<Command, "nowMs">) => sm.apply(encodeCommand({ nowMs: 1_000 + index, ...c } as Command), ++index);
    run({ type: "register", nodeId: "a", address: "127.0.0.1:9001", capacity: 100_000, region: "", labels: [] });
    // Node rows are packed 1,000 to a step: these span three.
    for (let n = 0; n < 2_499; n++) run({ type: "register", nodeId: `n${n}`, address: `10.0.${n >> 8}.${n & 255}:9000`, capacity: 1, region: "r1", labels: [["zone", `z${n % 3}`]] });
    for (let m = 0; m < 12_000; m++) run({ type: "createMeeting", meetingId: `big-${m}`, region: "", requiredLabels: [] });
    for (let m = 0; m < 6_000; m++) run({ type: "saveCheckpoint", nodeId: "a", generation: 1, meetingId: `big-${m}`, epoch: 1, sequence: 1, state: Buffer.from(`state of ${m}`) });
    const atOnce = Buffer.from(sm.snapshot());
    expect(Buffer.from(runSteps(sm.snapshotSteps())).equals(atOnce)).toBe(true);
    const restored = new CoordinatorStateMachine();
    restored.restore(atOnce);
    restored.checkInvariants();
    expect(queriesOf(restored)).toEqual(queriesOf(sm));
    expect(Buffer.from(restored.snapshot()).equals(atOnce)).toBe(true);

    // A snapshot written before the lists were packed in steps (the whole
    // header in one pack) restores to the same state.
    const headerLength = atOnce.readUInt32BE(0);
    const packr = new Packr({ useRecords: false, moreTypes: false });
    const oneShotHeader = packr.pack(packr.unpack(atOnce.subarray(4, 4 + headerLength)));
    const length = Buffer.alloc(4);
    length.writeUInt32BE(oneShotHeader.length);
    const older = new CoordinatorStateMachine();
    older.restore(Buffer.concat([length, oneShotHeader, atOnce.subarray(4 + headerLength)]));
    expect(queriesOf(older)).toEqual(queriesOf(sm));
  });

  it("a large snapshot in steps keeps every meeting as of its start, while deaths, re-registers, moves, ends and creates change meetings it has not yet written", () => {
    // 15,000 meetings span three row steps; the first step copies no meeting, so each change below reaches one the encoding has not written.
    const a = new Harness();
    const b = new Harness();
    const both = (input: Input, check = false) => {
      const [x, y] = [a, b].map((h) => {
        h.nowMs += 10;
        const stamp = { version: formatsAt(h.q.clusterVersion).command, term: 1 };
        const outcome = h.sm.apply(encodeCommand({ nowMs: h.nowMs, ...input } as Command, stamp), ++h.index);
        if (check) h.sm.checkInvariants();
        return outcome;
      });
      expect(y).toEqual(x);
    };
    for (const h of [a, b]) h.raiseClusterVersion();
    for (const n of ["n1", "n2", "n3"]) both({ type: "register", nodeId: n, address: `10.0.0.1:${n.slice(1)}`, capacity: 100_000, region: "", labels: [], incarnation: `${n}-first` });
    for (let m = 0; m < 15_000; m++) both({ type: "createMeeting", meetingId: `m${m}`, region: "", requiredLabels: [] });
    both({ type: "startMove", meetingId: "m14998", toNodeId: "", timeoutMs: 60_000 });
    const expected = Buffer.from(b.sm.snapshot());
    const steps = a.sm.snapshotSteps();
    const changes: Input[] = [
      { type: "setLiveness", nodeId: "n2", generation: 1, liveness: "DEAD" },
      { type: "register", nodeId: "n1", address: "10.0.0.1:1", capacity: 100_000, region: "", labels: [], incarnation: "n1-second" },
      { type: "startMove", meetingId: "m14999", toNodeId: "", timeoutMs: 60_000 },
      { type: "endMeeting", meetingId: "m14998" },
      { type: "endMeeting", meetingId: "m14997" },
      { type: "createMeeting", meetingId: "m14997", region: "", requiredLabels: [] },
    ];
    let step = steps.next();
    for (let k = 0; !step.done; k++) {
      const change = changes[k];
      if (change) both(change, true);
      else both({ type: "createMeeting", meetingId: `late-${k}`, region: "", requiredLabels: [] });
      step = steps.next();
    }
    expect(Buffer.from(step.value).equals(expected)).toBe(true);
    // The changes did happen, to meetings the encoding had not reached when they did.
    const moved = a.q.listMeetings().filter((r) => r.meetingId.startsWith("m") && r.epoch > 1);
    expect(moved.length).toBeGreaterThan(9_000); // n2's third by its death, n1's by its new tenure
    expect(moved.some((r) => Number(r.meetingId.slice(1)) >= 10_000)).toBe(true); // in the third row step
    expect(a.q.getRoute("m14998").ok).toBe(false);
  });

  it.each([4, 5])("snapshot → restore round-trips exactly: same queries, same bytes, same later results (seed %i)", (seed) => {
    const rng = new SeededRandom(seed);
    const clock = { nowMs: 1_000_000 };
    const original = new CoordinatorStateMachine({ config: RANDOM_CONFIG });
    feed(rng, [original], 1, 1_000, clock);
    const snap = original.snapshot();
    const restored = new CoordinatorStateMachine({ config: RANDOM_CONFIG });
    restored.restore(snap);
    restored.checkInvariants();
    expect(queriesOf(restored)).toEqual(queriesOf(original));
    expect(Buffer.from(restored.snapshot()).equals(Buffer.from(snap))).toBe(true);
    // Both go on with the same 300 commands and agree on every result.
    feed(rng, [original, restored], 1_001, 300, clock);
    expect(Buffer.from(restored.snapshot()).equals(Buffer.from(original.snapshot()))).toBe(true);
  });
});

function runSteps(steps: Generator<void, Uint8Array, void>): Uint8Array {
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}
