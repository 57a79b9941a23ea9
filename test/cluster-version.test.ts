/**
 * Cluster versions (src/coordinator/formats.ts): at cluster version 1 a
 * member writes exactly what the release before cluster versions writes,
 * and at cluster version 2 exactly what the release of cluster version 2
 * writes; once raised to 2 it writes command version 2 and snapshot format
 * 3, once raised to 3 command version 3 and snapshot format 4 (planned
 * moves, rebalancing, drains with a deadline, load); it reads every older
 * format; what a version does not carry is refused (FAILED_PRECONDITION)
 * before anything is written; an entry or snapshot newer than the build
 * stops the member instead of being taken for a malformed one; the
 * leader's monitor raises the version only when every member (learners
 * too) understands it.
 */
import { createHash } from "node:crypto";
import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import { type Command, type CommandStamp, decodeStampedCommand, encodeCommand } from "../src/coordinator/commands.js";
import { CoordinatorStateMachine } from "../src/coordinator/coordinator-state-machine.js";
import { FailedPreconditionError, NewerFormatError } from "../src/coordinator/errors.js";
import { BASELINE_FORMATS, type Formats, advertisedFormats, formatsAt, highestCommonVersion, supportsVersion } from "../src/coordinator/formats.js";
import { ClusterVersionMonitor } from "../src/coordinator/service/cluster-version-monitor.js";
import type { CoordinatorReplica } from "../src/coordinator/service/coordinator-replica.js";
import type { MemberProbe, ProbedMember } from "../src/coordinator/service/member-probe.js";
import { decodeState, encodeState } from "../src/coordinator/state-snapshot.js";
import { defaultStateConfig } from "../src/coordinator/state-config.js";
import { ADVERTISED_FORMATS } from "../src/member/advertised-formats.js";
import { VirtualScheduler } from "../src/time/virtual-scheduler.js";

const NEW: Formats = ADVERTISED_FORMATS;
/** What a member of the release of cluster version 2 (main at ebef576) advertises. */
const V2_RELEASE: Formats = { wire: 1, command: 2, snapshot: 3 };
const V2: CommandStamp = { version: 2, term: 5 };
const V3: CommandStamp = { version: 3, term: 6 };

/**
 * The same commands as the cluster version 2 golden hashes below were
 * computed from: the group raised to 2, then every command type of that
 * version, with incarnations and registers again (a duplicate and a new
 * process: the tenure rule).
 */
function feedV2(sm: CoordinatorStateMachine): string {
  const h = createHash("sha256");
  let index = 0;
  const run = (c: object, stamp = V2): void => {
    const bytes = encodeCommand({ nowMs: 1_000 + index * 7, ...c } as Command, stamp);
    h.update(bytes);
    sm.apply(bytes, ++index);
  };
  run({ type: "setClusterVersion", version: 2 }, { version: 2, term: 4 });
  for (let n = 1; n <= 3; n++) {
    run({ type: "register", nodeId: `m${n}`, address: `10.0.0.${n}:9000`, capacity: 5, region: n === 2 ? "eu" : "", labels: n === 3 ? [["zone", "b"]] : [], incarnation: `p${n}` });
  }
  for (let i = 0; i < 12; i++) run({ type: "createMeeting", meetingId: `room-${i}`, region: i % 3 === 0 ? "eu" : "", requiredLabels: [] });
  for (let i = 0; i < 12; i += 2) {
    const r = sm.queries.getRoute(`room-${i}`);
    if (!r.ok) throw new Error("room not placed");
    run({ type: "saveCheckpoint", nodeId: r.route.nodeId, generation: 1, meetingId: `room-${i}`, epoch: r.route.epoch, sequence: i, state: Buffer.from(`state ${i}`) });
  }
  run({ type: "register", nodeId: "m2", address: "10.0.0.2:9000", capacity: 5, region: "eu", labels: [], incarnation: "p2" });
  run({ type: "register", nodeId: "m3", address: "10.0.0.3:9000", capacity: 5, region: "", labels: [["zone", "b"]], incarnation: "p3-restarted" });
  run({ type: "setLiveness", nodeId: "m1", generation: 1, liveness: "SUSPECT" });
  run({ type: "setLiveness", nodeId: "m1", generation: 1, liveness: "DEAD" });
  run({ type: "drainNode", nodeId: "m2", migrate: true });
  run({ type: "endMeeting", meetingId: "room-4" });
  run({ type: "deregister", nodeId: "m3", generation: 2 });
  run({ type: "placeUnassigned" });
  return h.digest("hex");
}

const snapshotHash = (sm: CoordinatorStateMachine): string => createHash("sha256").update(sm.snapshot()).digest("hex");
const headerOf = (bytes: Uint8Array) => {
  const b = Buffer.from(bytes);
  return new Packr({ useRecords: false }).unpack(b.subarray(4, 4 + b.readUInt32BE(0))) as Record<string, unknown>;
};

/** The same commands the golden hashes below were computed from. */
function feed(sm: CoordinatorStateMachine, stamp?: { version: number; term: number }): string {
  const h = createHash("sha256");
  let index = 0;
  const run = (c: object): void => {
    const bytes = encodeCommand({ nowMs: 1_000 + index * 7, ...c } as Command, stamp);
    h.update(bytes);
    sm.apply(bytes, ++index);
  };
  for (let n = 1; n <= 3; n++) {
    run({ type: "register", nodeId: `m${n}`, address: `10.0.0.${n}:9000`, capacity: 5, region: n === 2 ? "eu" : "", labels: n === 3 ? [["zone", "b"]] : [] });
  }
  for (let i = 0; i < 12; i++) run({ type: "createMeeting", meetingId: `room-${i}`, region: i % 3 === 0 ? "eu" : "", requiredLabels: [] });
  for (let i = 0; i < 12; i += 2) {
    const r = sm.queries.getRoute(`room-${i}`);
    if (!r.ok) throw new Error("room not placed");
    run({ type: "saveCheckpoint", nodeId: r.route.nodeId, generation: 1, meetingId: `room-${i}`, epoch: r.route.epoch, sequence: i, state: Buffer.from(`state ${i}`) });
  }
  run({ type: "setLiveness", nodeId: "m1", generation: 1, liveness: "DEAD" });
  run({ type: "drainNode", nodeId: "m2", migrate: true });
  run({ type: "endMeeting", meetingId: "room-4" });
  run({ type: "deregister", nodeId: "m3", generation: 1 });
  run({ type: "placeUnassigned" });
  return h.digest("hex");
}

describe("formats and cluster versions", () => {
  it("a member that advertises nothing understands the baseline; the version is the highest all members understand", () => {
    expect(advertisedFormats(undefined)).toEqual(BASELINE_FORMATS);
    expect(advertisedFormats({ wire: 0, command: 0, snapshot: 0 })).toEqual(BASELINE_FORMATS);
    expect(highestCommonVersion([NEW, NEW, NEW])).toBe(3);
    expect(highestCommonVersion([NEW, V2_RELEASE, NEW])).toBe(2);
    expect(highestCommonVersion([NEW, BASELINE_FORMATS, NEW])).toBe(1);
    expect(highestCommonVersion([NEW, { ...NEW, snapshot: 2 }])).toBe(1);
    expect(highestCommonVersion([NEW, { ...NEW, snapshot: 3 }])).toBe(2);
    expect(supportsVersion(BASELINE_FORMATS, 2)).toBe(false);
    expect(supportsVersion(NEW, 2)).toBe(true);
    expect(supportsVersion(V2_RELEASE, 3)).toBe(false);
    expect(supportsVersion(NEW, 3)).toBe(true);
    expect(() => formatsAt(99)).toThrow(/cluster version 99 is not one this build knows/);
  });

  it("at cluster version 1, commands and snapshots are byte for byte what the previous release writes", () => {
    // Computed by the previous release (commit 4c6fe22) from the same commands.
    const sm = new CoordinatorStateMachine();
    expect(feed(sm)).toBe("095913440c9a3225661e666b567bfef7064a9421f1c79fbbc3d7d22379a457c2");
    expect(createHash("sha256").update(sm.snapshot()).digest("hex")).toBe("1c9e100c130184c21ec2dec4ba5fde093d9484605febc9ac7abb8fcba4795de9");
  });

  it("at cluster version 1, a node registering again applies as the previous release applies it (no incarnations, no new tenures)", () => {
    // The same commands through the previous release (commit 4c6fe22) gave this snapshot; its commands drop the incarnation field.
    const sm = new CoordinatorStateMachine();
    let index = 0;
    const run = (c: object): void => void sm.apply(encodeCommand({ nowMs: 1_000 + index * 7, ...c } as Command), ++index);
    const reg = (n: number, incarnation: string): void =>
      run({ type: "register", nodeId: `m${n}`, address: `10.0.0.${n}:9000`, capacity: 5, region: "", labels: [], incarnation });
    for (let n = 1; n <= 3; n++) reg(n, `p${n}`);
    for (let i = 0; i < 9; i++) run({ type: "createMeeting", meetingId: `room-${i}`, region: "", requiredLabels: [] });
    reg(2, "p2"); // the same process asks again
    reg(3, "p3-restarted"); // a new process of a node that holds meetings
    run({ type: "placeUnassigned" });
    expect(createHash("sha256").update(sm.snapshot()).digest("hex")).toBe("317f1ec5708a2956085bc367e34667438c3e5d208510a2b13b0f4a8978cb6938");
  });

  it("once raised, commands carry their leader's term into the audit trail and snapshots become format 3, which round-trips", () => {
    const sm = new CoordinatorStateMachine();
    sm.apply(encodeCommand({ type: "setClusterVersion", nowMs: 1, version: 2 }, { version: 2, term: 4 }), 1);
    expect(sm.queries.clusterVersion).toBe(2);
    const sm2 = new CoordinatorStateMachine();
    sm2.apply(encodeCommand({ type: "setClusterVersion", nowMs: 1, version: 2 }, { version: 2, term: 4 }), 1);
    const h = createHash("sha256");
    let index = 1;
    for (const c of [
      { type: "register", nodeId: "m1", address: "10.0.0.1:9000", capacity: 5, region: "", labels: [] },
      { type: "createMeeting", meetingId: "room", region: "", requiredLabels: [] },
    ]) {
      const bytes = encodeCommand({ nowMs: 100 + index, ...c } as Command, { version: 2, term: 7 });
      expect(decodeStampedCommand(bytes).stamp).toEqual({ version: 2, term: 7 });
      h.update(bytes);
      sm.apply(bytes, ++index);
    }
    expect(sm.queries.auditLog().map((a) => [a.kind, a.term])).toEqual([["setClusterVersion", 4], ["register", 7], ["createMeeting", 7]]);
    const bytes = sm.snapshot();
    const body = new Packr({ useRecords: false }).unpack(Buffer.from(bytes).subarray(4, 4 + Buffer.from(bytes).readUInt32BE(0))) as { v: number; clusterVersion: number; audit: unknown[][] };
    expect(body.v).toBe(3);
    expect(body.clusterVersion).toBe(2);
    expect(body.audit[1]).toHaveLength(7);
    const restored = decodeState(bytes, defaultStateConfig());
    expect(restored.clusterVersion).toBe(2);
    expect(restored.auditLog().map((a) => a.term)).toEqual([4, 7, 7]);
    expect(Buffer.from(encodeState(restored)).equals(Buffer.from(bytes))).toBe(true);
    expect(sm2.queries.clusterVersion).toBe(2);
  });

  it("reads the previous release's formats after the raise: a version 1 entry and a format 2 snapshot", () => {
    const old = new CoordinatorStateMachine();
    feed(old);
    const sm = new CoordinatorStateMachine();
    sm.restore(old.snapshot());
    expect(sm.queries.clusterVersion).toBe(1);
    expect(sm.queries.auditLog().every((a) => a.term === 0)).toBe(true);
    const index = sm.queries.appliedIndex;
    sm.apply(encodeCommand({ type: "setClusterVersion", nowMs: 10_000, version: 2 }, { version: 2, term: 3 }), index + 1);
    // A version 1 entry still in the log (written before the raise) applies as before.
    const outcome = sm.apply(encodeCommand({ type: "endMeeting", nowMs: 10_001, meetingId: "room-0" }), index + 2);
    expect(outcome.result.ok).toBe(true);
    expect(sm.queries.auditLog().at(-1)).toMatchObject({ kind: "endMeeting", term: 0 });
  });

  it("at cluster version 2, commands and snapshots are byte for byte what the release of cluster version 2 writes", () => {
    // Computed by that release (main at ebef576) from the same commands.
    const sm = new CoordinatorStateMachine();
    expect(feedV2(sm)).toBe("af064adf1067e67dabf1723ba963ced1cf8a20889f0d8c395a69ef483de61a77");
    expect(sm.queries.clusterVersion).toBe(2);
    expect(snapshotHash(sm)).toBe("2334d06b2911fb0bb448278c8813920f9d81ce96590d64d20f916a9cfbf63528");
    expect(headerOf(sm.snapshot())["v"]).toBe(3);
  });

  it("below cluster version 3 what it adds is refused before anything is written, naming the version; from 3 on it is written", () => {
    const gated: [string, Command][] = [
      ["command startMove", { type: "startMove", nowMs: 1, meetingId: "room-1", toNodeId: "", timeoutMs: 1_000 }],
      ["command completeMove", { type: "completeMove", nowMs: 1, nodeId: "m2", generation: 1, meetingId: "room-1", epoch: 1, sequence: 9, state: Buffer.from("x") }],
      ["command expireMove", { type: "expireMove", nowMs: 1, meetingId: "room-1", epoch: 1 }],
      ["command rebalance", { type: "rebalance", nowMs: 1, maxMoves: 1, maxInFlight: 1, thresholdPermille: 800, timeoutMs: 1_000 }],
      ["command scheduleDrain", { type: "scheduleDrain", nowMs: 1, nodeId: "m2", generation: 0, afterMs: 1_000 }],
      ["command drainDue", { type: "drainDue", nowMs: 1, nodeId: "m2", timeoutMs: 1_000 }],
      ["command undrain", { type: "undrain", nowMs: 1, nodeId: "m2" }],
      ["command reportLoad", { type: "reportLoad", nowMs: 1, reports: [] }],
      ["limits declared at register", { type: "register", nowMs: 1, nodeId: "m9", address: "10.0.0.9:9000", capacity: 5, region: "", labels: [], limits: { cpuPermille: 800, netInBytesPerSec: 0, netOutBytesPerSec: 0, participants: 0 } }],
      ["excluded labels for a new meeting", { type: "createMeeting", nowMs: 1, meetingId: "x", region: "", requiredLabels: [], excludedLabels: [["zone", "b"]] }],
      ["a preferred node for a new meeting", { type: "createMeeting", nowMs: 1, meetingId: "x", region: "", requiredLabels: [], preferredNodeId: "m2" }],
    ];
    for (const [what, command] of gated) {
      for (const stamp of [{ version: 1, term: 0 }, V2]) {
        let error: unknown;
        try {
          encodeCommand(command, stamp);
        } catch (err) {
          error = err;
        }
        expect(error, what).toBeInstanceOf(FailedPreconditionError);
        expect((error as Error).message).toBe(
          `${what} needs cluster version 3, and the cluster runs at cluster version ${stamp.version}: it is raised by itself once every member runs a release that understands it (convene status shows it); nothing was changed`,
        );
      }
      expect(() => encodeCommand(command, V3), what).not.toThrow();
    }
    // Without limits, excluded labels or a preferred node, register and create are the previous bytes.
    const plain: Command = { type: "register", nowMs: 1, nodeId: "m9", address: "10.0.0.9:9000", capacity: 5, region: "", labels: [], limits: { cpuPermille: 0, netInBytesPerSec: 0, netOutBytesPerSec: 0, participants: 0 } };
    const { limits: _none, ...withoutLimits } = plain;
    expect(Buffer.from(encodeCommand(plain, V2)).equals(Buffer.from(encodeCommand(withoutLimits as Command, V2)))).toBe(true);
    // An entry of version 2 naming a new field is applied as that release applies it: the field ignored.
    const [sm, twin] = [new CoordinatorStateMachine(), new CoordinatorStateMachine()];
    feedV2(sm);
    feedV2(twin);
    const pack = (v: object) => new Packr({ useRecords: false, moreTypes: false }).pack(v);
    const undrain = pack({ v: 2, term: 5, type: "undrain", nowMs: 5_000, nodeId: "m2" });
    const refused = sm.apply(undrain, sm.queries.appliedIndex + 1);
    expect(refused.result).toMatchObject({ ok: false, code: "INVALID_ARGUMENT", message: "command type undrain needs command version 3" });
    expect(sm.queries.getNode("m2")!.draining).toBe(true);
    const register = { v: 2, term: 5, type: "register", nowMs: 5_001, nodeId: "m4", address: "10.0.0.4:9000", capacity: 5, region: "", labels: [] };
    const create = { v: 2, term: 5, type: "createMeeting", nowMs: 5_002, meetingId: "late", region: "", requiredLabels: [] };
    sm.apply(pack({ ...register, limits: { cpuPermille: 1 } }), sm.queries.appliedIndex + 1);
    sm.apply(pack({ ...create, preferredNodeId: "m2", excludedLabels: [["zone", "x"]] }), sm.queries.appliedIndex + 1);
    twin.apply(undrain, twin.queries.appliedIndex + 1);
    twin.apply(pack(register), twin.queries.appliedIndex + 1);
    twin.apply(pack(create), twin.queries.appliedIndex + 1);
    expect(sm.queries.getNode("m4")!.limits).toEqual({ cpuPermille: 0, netInBytesPerSec: 0, netOutBytesPerSec: 0, participants: 0 });
    expect(headerOf(sm.snapshot())["v"]).toBe(3);
    expect(snapshotHash(sm)).toBe(snapshotHash(twin));
  });

  it("once raised to 3, snapshots are format 4 with the additions and the event log, round-trip, and a format 3 snapshot still restores", () => {
    const old = new CoordinatorStateMachine();
    feedV2(old);
    const sm = new CoordinatorStateMachine();
    sm.restore(old.snapshot());
    expect(sm.queries.clusterVersion).toBe(2);
    // The events before a format 3 snapshot are unknown: watchers resume from its index on.
    expect(sm.queries.eventFloor).toBe(old.queries.appliedIndex);
    let index = sm.queries.appliedIndex;
    sm.apply(encodeCommand({ type: "setClusterVersion", nowMs: 10_000, version: 3 }, V3), ++index);
    expect(sm.queries.clusterVersion).toBe(3);
    // A version 2 entry written before the raise still applies as before.
    expect(sm.apply(encodeCommand({ type: "endMeeting", nowMs: 10_001, meetingId: "room-0" }, V2), ++index).result.ok).toBe(true);
    expect(sm.apply(encodeCommand({ type: "register", nowMs: 10_002, nodeId: "m4", address: "10.0.0.4:9000", capacity: 20, region: "", labels: [], limits: { cpuPermille: 900, netInBytesPerSec: 0, netOutBytesPerSec: 0, participants: 0 } }, V3), ++index).result.ok).toBe(true);
    const owner = sm.queries.listMeetings().find((m) => m.nodeId !== "")!;
    expect(sm.apply(encodeCommand({ type: "startMove", nowMs: 10_002, meetingId: owner.meetingId, toNodeId: "", timeoutMs: 5_000 }, V3), ++index).result).toMatchObject({ ok: true, type: "startMove" });
    expect(sm.apply(encodeCommand({ type: "undrain", nowMs: 10_003, nodeId: "m2" }, V3), ++index).result).toMatchObject({ ok: true, type: "undrain" });
    const bytes = sm.snapshot();
    const body = headerOf(bytes);
    expect([body["v"], body["clusterVersion"]]).toEqual([4, 3]);
    expect(Object.keys(body)).toEqual(expect.arrayContaining(["nodeExtras", "meetingExtras", "events", "eventFloor"]));
    const restored = decodeState(bytes, defaultStateConfig());
    expect(restored.clusterVersion).toBe(3);
    expect(restored.pendingMoves()).toEqual(sm.queries.pendingMoves());
    expect(restored.eventsSince(0)).toEqual(sm.queries.eventsSince(0));
    expect(Buffer.from(encodeState(restored)).equals(Buffer.from(bytes))).toBe(true);
    // A member of the release of cluster version 2 cannot read format 4: it stops (NewerFormatError), as this one does for 5.
  });

  it("never lowers the version; a version, command or snapshot newer than this build stops the member", () => {
    const sm = new CoordinatorStateMachine();
    sm.apply(encodeCommand({ type: "setClusterVersion", nowMs: 1, version: 2 }, { version: 2, term: 1 }), 1);
    const lower = sm.apply(encodeCommand({ type: "setClusterVersion", nowMs: 2, version: 1 }, { version: 2, term: 1 }), 2);
    expect(lower.result).toEqual({ ok: true, type: "setClusterVersion", version: 2, changed: false });
    expect(sm.queries.clusterVersion).toBe(2);
    const pack = (v: object) => new Packr({ useRecords: false, moreTypes: false }).pack(v);
    expect(() => sm.apply(pack({ v: 2, term: 1, type: "setClusterVersion", nowMs: 3, version: 4 }), 3)).toThrow(NewerFormatError);
    expect(() => sm.apply(pack({ v: 4, term: 1, type: "placeUnassigned", nowMs: 3 }), 3)).toThrow(NewerFormatError);
    const header = pack({ v: 5 });
    const future = Buffer.concat([Buffer.alloc(4), header]);
    future.writeUInt32BE(header.length, 0);
    expect(() => decodeState(future, defaultStateConfig())).toThrow(NewerFormatError);
  });
});

describe("the leader's cluster version monitor", () => {
  /** A leader of `members` whose probe answers from `formats` (undefined: no answer). */
  function leaderOf(members: { voters: string[]; learners: string[] }, formats: Record<string, Formats | undefined>, scheduler?: VirtualScheduler) {
    const sm = new CoordinatorStateMachine();
    let index = 0;
    const proposed: number[] = [];
    const coordinator = {
      raft: { isLeader: () => true, status: () => ({ id: "n1", confState: members }) },
      local: () => sm.queries,
      propose: async (p: { type: "setClusterVersion"; version: number }) => {
        proposed.push(p.version);
        return sm.apply(encodeCommand({ ...p, nowMs: 1 }, { version: 2, term: 1 }), ++index).result;
      },
    } as unknown as CoordinatorReplica;
    const asked: string[] = [];
    const probe = {
      status: async (address: string) => {
        asked.push(address);
        return formats[address] ? ({ formats: formats[address] } as ProbedMember) : undefined;
      },
    } as unknown as MemberProbe;
    const peers = new Map([...members.voters, ...members.learners].map((id) => [id, id]));
    const monitor = new ClusterVersionMonitor({ coordinator, probe, peers: () => peers, ownFormats: NEW, log: () => undefined, ...(scheduler ? { scheduler } : {}) });
    return { monitor, sm, proposed, asked };
  }

  it("raises once every voter and learner understands the new formats, and only then", async () => {
    const group = { voters: ["n1", "n2", "n3"], learners: ["n4"] };
    const formats: Record<string, Formats | undefined> = { n2: NEW, n3: BASELINE_FORMATS, n4: NEW };
    const { monitor, sm, proposed } = leaderOf(group, formats);
    await monitor.check();
    expect(proposed).toEqual([]); // n3 runs the previous release
    formats.n3 = NEW;
    formats.n4 = BASELINE_FORMATS;
    await monitor.check();
    expect(proposed).toEqual([]); // a learner applies the log too
    formats.n4 = undefined;
    await monitor.check();
    expect(proposed).toEqual([]); // a member that does not answer may be old
    formats.n4 = V2_RELEASE;
    expect(await monitor.check()).toBe(2); // every member understands 2, one not 3
    expect(sm.queries.clusterVersion).toBe(2);
    await monitor.check();
    expect(proposed).toEqual([2]);
    formats.n4 = NEW;
    expect(await monitor.check()).toBe(3);
    expect(sm.queries.clusterVersion).toBe(3);
    await monitor.check();
    expect(proposed).toEqual([2, 3]); // raised once each; never again, never lower
    formats.n2 = BASELINE_FORMATS;
    await monitor.check();
    expect(proposed).toEqual([2, 3]);
  });

  it("asks nobody once the version is as high as the leader itself understands (an idle group stays quiet)", async () => {
    const group = { voters: ["n1", "n2", "n3"], learners: [] };
    const { monitor, asked } = leaderOf(group, { n2: NEW, n3: NEW });
    expect(await monitor.check()).toBe(highestCommonVersion([NEW]));
    expect(asked).toEqual(["n2", "n3"]);
    asked.length = 0;
    for (let i = 0; i < 5; i++) await monitor.check();
    expect(asked).toEqual([]);
  });

  it("asks every second until the version is raised as high as it understands, then its timer stops until it leads again", async () => {
    const clock = new VirtualScheduler();
    const group = { voters: ["n1", "n2", "n3"], learners: [] };
    const formats: Record<string, Formats | undefined> = { n2: NEW, n3: undefined };
    const { monitor, asked, proposed } = leaderOf(group, formats, clock);
    monitor.start();
    await clock.advance(3000);
    expect(asked).toEqual(["n2", "n3", "n2", "n3", "n2", "n3"]); // n3 does not answer: nothing raised, asked again
    formats.n3 = NEW;
    await clock.advance(1000);
    expect(proposed).toEqual([highestCommonVersion([NEW])]);
    await clock.advance(1000); // the next round finds it at the highest and stops
    expect(clock.pending).toBe(0);
    monitor.stop();
    monitor.start();
    expect(clock.pending).toBe(1);
    monitor.stop();
  });
});
