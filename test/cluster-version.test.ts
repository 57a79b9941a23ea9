/**
 * Cluster versions (src/coordinator/formats.ts): at cluster version 1 a
 * member writes exactly what the previous release writes; once raised it
 * writes command version 2 and snapshot format 3, and reads every older
 * format; an entry or snapshot newer than the build stops the member
 * instead of being taken for a malformed one; the leader's monitor raises
 * the version only when every member (learners too) understands it.
 */
import { createHash } from "node:crypto";
import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import { type Command, decodeStampedCommand, encodeCommand } from "../src/coordinator/commands.js";
import { CoordinatorStateMachine } from "../src/coordinator/coordinator-state-machine.js";
import { NewerFormatError } from "../src/coordinator/errors.js";
import { BASELINE_FORMATS, type Formats, advertisedFormats, formatsAt, highestCommonVersion, supportsVersion } from "../src/coordinator/formats.js";
import { ClusterVersionMonitor } from "../src/coordinator/service/cluster-version-monitor.js";
import type { CoordinatorReplica } from "../src/coordinator/service/coordinator-replica.js";
import type { MemberProbe, ProbedMember } from "../src/coordinator/service/member-probe.js";
import { decodeState, encodeState } from "../src/coordinator/state-snapshot.js";
import { defaultStateConfig } from "../src/coordinator/state-config.js";
import { ADVERTISED_FORMATS } from "../src/member/advertised-formats.js";

const NEW: Formats = ADVERTISED_FORMATS;

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
    expect(highestCommonVersion([NEW, NEW, NEW])).toBe(2);
    expect(highestCommonVersion([NEW, BASELINE_FORMATS, NEW])).toBe(1);
    expect(highestCommonVersion([NEW, { ...NEW, snapshot: 2 }])).toBe(1);
    expect(supportsVersion(BASELINE_FORMATS, 2)).toBe(false);
    expect(supportsVersion(NEW, 2)).toBe(true);
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

  it("never lowers the version; a version, command or snapshot newer than this build stops the member", () => {
    const sm = new CoordinatorStateMachine();
    sm.apply(encodeCommand({ type: "setClusterVersion", nowMs: 1, version: 2 }, { version: 2, term: 1 }), 1);
    const lower = sm.apply(encodeCommand({ type: "setClusterVersion", nowMs: 2, version: 1 }, { version: 2, term: 1 }), 2);
    expect(lower.result).toEqual({ ok: true, type: "setClusterVersion", version: 2, changed: false });
    expect(sm.queries.clusterVersion).toBe(2);
    const pack = (v: object) => new Packr({ useRecords: false, moreTypes: false }).pack(v);
    expect(() => sm.apply(pack({ v: 2, term: 1, type: "setClusterVersion", nowMs: 3, version: 3 }), 3)).toThrow(NewerFormatError);
    expect(() => sm.apply(pack({ v: 3, term: 1, type: "placeUnassigned", nowMs: 3 }), 3)).toThrow(NewerFormatError);
    const header = pack({ v: 4 });
    const future = Buffer.concat([Buffer.alloc(4), header]);
    future.writeUInt32BE(header.length, 0);
    expect(() => decodeState(future, defaultStateConfig())).toThrow(NewerFormatError);
  });
});

describe("the leader's cluster version monitor", () => {
  /** A leader of `members` whose probe answers from `formats` (undefined: no answer). */
  function leaderOf(members: { voters: string[]; learners: string[] }, formats: Record<string, Formats | undefined>) {
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
    const probe = { status: async (address: string) => (formats[address] ? ({ formats: formats[address] } as ProbedMember) : undefined) } as unknown as MemberProbe;
    const peers = new Map([...members.voters, ...members.learners].map((id) => [id, id]));
    const monitor = new ClusterVersionMonitor({ coordinator, probe, peers: () => peers, ownFormats: NEW, log: () => undefined });
    return { monitor, sm, proposed };
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
    formats.n4 = NEW;
    expect(await monitor.check()).toBe(2);
    expect(sm.queries.clusterVersion).toBe(2);
    await monitor.check();
    expect(proposed).toEqual([2]); // raised once; never again, never lower
    formats.n2 = BASELINE_FORMATS;
    await monitor.check();
    expect(proposed).toEqual([2]);
  });
});
