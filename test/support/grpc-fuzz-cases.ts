/**
 * Hostile requests for every member method, and the judge that says what
 * the answer to each must be. Requests come two ways:
 * - typed: built field by field from hostile values (hostile-values.ts)
 *   around what the cluster really holds (real node ids with forged
 *   generations, real meetings with forged epochs and sequences), then
 *   encoded by the generated codec;
 * - raw: bytes that are not what the codec would write (garbled, cut
 *   short, wrong wire types, plain garbage).
 * Either way the bytes are decoded as the server will decode them and the
 * decoded request is judged against API.md's rules and the cluster's
 * state (`FuzzWorld`): a refusal with its codes (and, for
 * INVALID_ARGUMENT, the fields the message may name), a read that changes
 * nothing, or a request that would be valid and change the state, which
 * is never sent (so the "state unchanged" claim covers exactly what was).
 */
import * as grpc from "@grpc/grpc-js";
import fc from "fast-check";
import { validateAddress, validateRegion } from "../../src/coordinator/ids.js";
import { validateLabels } from "../../src/coordinator/labels.js";
import type { MethodInfo } from "./grpc-fuzz-methods.js";
import {
  MEETING_ID,
  NODE_ID,
  badAddress,
  badLoad,
  badMeetingId,
  badNodeId,
  garbageBytes,
  garbledMessage,
  ghostId,
  hostileLong,
  hostileNumber,
  repeated,
} from "./hostile-values.js";

const { INVALID_ARGUMENT: IA, NOT_FOUND: NF, FAILED_PRECONDITION: FP, RESOURCE_EXHAUSTED: RE } = grpc.status;

/** What the cluster holds when the run starts; the run must leave it so. */
export interface FuzzWorld {
  readonly clusterId: string;
  readonly members: readonly { readonly id: string; readonly address: string }[];
  readonly nodes: ReadonlyMap<string, { readonly generation: number; readonly dead: boolean }>;
  readonly meetings: ReadonlyMap<string, { readonly owner: string; readonly epoch: number; readonly sequence?: number; readonly state?: Buffer }>;
  readonly maxCheckpointBytes: number;
  /** The members' gRPC receive limit: a bigger request is refused before it is decoded. */
  readonly maxMessageBytes: number;
  /** Service names the health service knows. */
  readonly healthServices: readonly string[];
}

export type Verdict =
  /** Must fail with one of `codes`; for INVALID_ARGUMENT the message names one of `fields`. */
  | { readonly kind: "reject"; readonly codes: readonly number[]; readonly fields: readonly string[] }
  /** The bytes do not decode as the request type: INVALID_ARGUMENT. */
  | { readonly kind: "malformed"; readonly reason: string }
  /** Valid and changes nothing (a read, an ignored hint): any answer but an internal error. */
  | { readonly kind: "read" }
  /**
   * A raft stream of well-addressed batches that do not decode: dropped, and
   * the stream ends OK (raft.proto), or ABORTED when another stream from the
   * same (impostor) sender replaced it meanwhile.
   */
  | { readonly kind: "dropped" }
  /** Would be valid and change the cluster: not sent. */
  | { readonly kind: "unsafe" };

export interface GrpcCase {
  readonly method: MethodInfo;
  /** Index into world.members: which member is called. */
  readonly member: number;
  readonly mode: "typed" | "raw";
  /** The request as built (typed) or the frames (raw), for reports. */
  readonly shown: unknown;
  readonly frames: readonly Buffer[];
}

const reject = (codes: readonly number[], fields: readonly string[] = []): Verdict => ({ kind: "reject", codes, fields });
const READ: Verdict = { kind: "read" };
const UNSAFE: Verdict = { kind: "unsafe" };

type Req = Record<string, unknown>;

const isSafeUint = (v: unknown, min: number): boolean => typeof v === "number" && Number.isSafeInteger(v) && v >= min;
const matches = (v: unknown, re: RegExp): boolean => typeof v === "string" && re.test(v);
const passes = (check: (v: unknown) => unknown, v: unknown): boolean => {
  try {
    check(v);
    return true;
  } catch {
    return false;
  }
};
const ADMIN_HOST_PORT = /^[A-Za-z0-9.-]+:\d{1,5}$/;
const isShare = (v: unknown): boolean => typeof v === "number" && Number.isFinite(v) && v >= 0 && v <= 1;
/** Durations of the move and drain calls: at most a day. */
const DAY_MS = 24 * 3_600_000;
const isDuration = (v: unknown): boolean => isSafeUint(v, 0) && (v as number) <= DAY_MS;
const isNodeIdOrEmpty = (v: unknown): boolean => v === "" || matches(v, NODE_ID);

/** Load figures as Heartbeat (prefix "") and Register (prefix "limits.") carry them. */
function figureChecks(f: Req, prefix: string): [boolean, string][] {
  return [
    [isShare(f.cpu ?? 0), `${prefix}cpu`],
    [isSafeUint(f.net_in_bytes_per_sec ?? 0, 0), `${prefix}net_in_bytes_per_sec`],
    [isSafeUint(f.net_out_bytes_per_sec ?? 0, 0), `${prefix}net_out_bytes_per_sec`],
    [isSafeUint(f.participants ?? 0, 0), `${prefix}participants`],
  ];
}

/** A member's report of its open watch streams (src/member/admin-service.ts), checked field by field in its order. */
function judgeStreamReport(r: Req): Verdict {
  if (!matches(r.member_id, NODE_ID)) return reject([IA], ["member_id"]);
  if (!isSafeUint(r.sequence, 1)) return reject([IA], ["sequence"]);
  const counts = (r.counts ?? []) as Req[];
  for (const [i, c] of counts.entries()) {
    const bad = invalid([
      [matches(c.node_id, NODE_ID), `counts[${i}].node_id`],
      [isSafeUint(c.generation, 1), `counts[${i}].generation`],
      [isSafeUint(c.sequence, 1) && (c.sequence as number) <= (r.sequence as number), `counts[${i}].sequence`],
    ]);
    if (bad.length > 0) return reject([IA], bad);
  }
  // A well-formed report could change what the leader's detector believes: not sent.
  return UNSAFE;
}

/**
 * HandOver: fenced as SaveCheckpoint, and the fixture has no hand-over
 * under way, so whatever gets past the size and the fields is refused.
 */
function judgeHandOver(world: FuzzWorld, r: Req): Verdict {
  if ((r.state as Buffer).length > world.maxCheckpointBytes) return reject([RE]);
  const bad = invalid([
    [matches(r.node_id, NODE_ID), "node_id"],
    [isSafeUint(r.generation, 1), "generation"],
    [matches(r.meeting_id, MEETING_ID), "meeting_id"],
    [isSafeUint(r.epoch, 1), "epoch"],
    [isSafeUint(r.sequence, 0), "sequence"],
  ]);
  return bad.length > 0 ? reject([IA], bad) : reject([FP]);
}

/** Fields failing their rule, in the order the handler checks them. */
function invalid(checks: readonly (readonly [boolean, string])[]): string[] {
  return checks.filter(([ok]) => !ok).map(([, field]) => field);
}

/** Session fencing as API.md has it for Heartbeat and WatchAssignments. */
function session(world: FuzzWorld, r: Req): Verdict {
  const node = world.nodes.get(r.node_id as string);
  if (!node) return reject([NF]);
  if (node.generation !== r.generation || node.dead) return reject([FP]);
  return UNSAFE;
}

function judgeSave(world: FuzzWorld, r: Req): Verdict {
  const state = r.state as Buffer;
  if (state.length > world.maxCheckpointBytes) return reject([RE]);
  const bad = invalid([
    [matches(r.node_id, NODE_ID), "node_id"],
    [isSafeUint(r.generation, 1), "generation"],
    [matches(r.meeting_id, MEETING_ID), "meeting_id"],
    [isSafeUint(r.epoch, 1), "epoch"],
    [isSafeUint(r.sequence, 0), "sequence"],
  ]);
  if (bad.length > 0) return reject([IA], bad);
  const node = world.nodes.get(r.node_id as string);
  const meeting = world.meetings.get(r.meeting_id as string);
  if (!node || node.generation !== r.generation || node.dead || !meeting) return reject([FP]);
  if (meeting.owner !== r.node_id || meeting.epoch !== r.epoch) return reject([FP]);
  const stored = meeting.sequence ?? -1;
  const seq = r.sequence as number;
  if (seq < stored) return reject([FP]);
  if (seq === stored) return meeting.state && Buffer.compare(meeting.state, state) === 0 ? READ : reject([FP]);
  return UNSAFE;
}

/** Frames of a raft stream as the transport takes them (src/raft-runtime/grpc-transport.ts). */
function judgeRaftStream(world: FuzzWorld, memberId: string, frames: readonly Req[], snapshot: boolean): Verdict {
  for (const [i, f] of frames.entries()) {
    const refused = f.cluster_id !== world.clusterId || f.to !== memberId;
    // Stream checks every batch; SendSnapshot only the first chunk, whose header then fails to decode.
    // After an accepted batch, a newer stream from the same (impostor) sender may have replaced this one: ABORTED.
    if (refused && (i === 0 || !snapshot)) return reject(i === 0 ? [FP] : [FP, grpc.status.ABORTED]);
    if (snapshot) return reject([IA], ["snapshot", "header"]);
  }
  return { kind: "dropped" };
}

/** What the answer to `r` (decoded as the server decodes it) must be. */
export function judge(world: FuzzWorld, method: MethodInfo, memberId: string, frames: readonly Req[]): Verdict {
  const r = frames[0] ?? {};
  const members = new Set(world.members.map((m) => m.id));
  switch (method.id) {
    case "convene.v1.NodeAgent/Register": {
      const bad = invalid([
        [matches(r.node_id, NODE_ID), "node_id"],
        [passes(validateAddress, r.address), "address"],
        [isSafeUint(r.capacity, 1), "capacity"],
        [passes(validateRegion, r.region), "region"],
        [passes(validateLabels, r.labels), "labels"],
        ...figureChecks((r.limits ?? {}) as Req, "limits."),
      ]);
      return bad.length > 0 ? reject([IA], bad) : UNSAFE;
    }
    case "convene.v1.NodeAgent/Heartbeat": {
      const load = r.load as number;
      const bad = invalid([
        [matches(r.node_id, NODE_ID), "node_id"],
        [isSafeUint(r.generation, 1), "generation"],
        [Number.isFinite(load) && load >= 0 && load <= 1, "load"],
        ...figureChecks(r, ""),
      ]);
      return bad.length > 0 ? reject([IA], bad) : session(world, r);
    }
    case "convene.v1.NodeAgent/HeartbeatStream": {
      // Each beat is judged as the unary Heartbeat, but answered in the stream (its status is a field of
      // its answer) while the stream goes on: a stream of refused beats is a read; one valid beat is not sent.
      const verdicts = frames.map((f) => judge(world, { ...method, id: "convene.v1.NodeAgent/Heartbeat" }, memberId, [f]));
      return verdicts.some((v) => v.kind === "unsafe") ? UNSAFE : READ;
    }
    case "convene.v1.NodeAgent/WatchAssignments": {
      const bad = invalid([
        [matches(r.node_id, NODE_ID), "node_id"],
        [isSafeUint(r.generation, 1), "generation"],
      ]);
      return bad.length > 0 ? reject([IA], bad) : session(world, r);
    }
    case "convene.v1.NodeAgent/SaveCheckpoint":
      return judgeSave(world, r);
    case "convene.v1.NodeAgent/HandOver":
      return judgeHandOver(world, r);
    case "convene.v1.NodeAgent/Drain": {
      const bad = invalid([
        [matches(r.node_id, NODE_ID), "node_id"],
        [isSafeUint(r.generation, 1), "generation"],
        [isDuration(r.deadline_ms), "deadline_ms"],
      ]);
      if (bad.length > 0) return reject([IA], bad);
      const node = world.nodes.get(r.node_id as string);
      if (!node) return reject([NF]);
      return node.generation !== r.generation ? reject([FP]) : UNSAFE;
    }
    case "convene.v1.NodeAgent/Deregister": {
      const bad = invalid([
        [matches(r.node_id, NODE_ID), "node_id"],
        [isSafeUint(r.generation, 1), "generation"],
      ]);
      if (bad.length > 0) return reject([IA], bad);
      const node = world.nodes.get(r.node_id as string);
      if (!node) return reject([NF]);
      return node.generation !== r.generation ? reject([FP]) : UNSAFE;
    }
    case "convene.v1.Coordinator/GetRoute": {
      const bad = invalid([
        [matches(r.meeting_id, MEETING_ID), "meeting_id"],
        [passes(validateRegion, r.region), "region"],
        [passes((v) => validateLabels(v, "required_labels"), r.required_labels), "required_labels"],
        [passes((v) => validateLabels(v, "excluded_labels"), r.excluded_labels), "excluded_labels"],
        [isNodeIdOrEmpty(r.preferred_node_id), "preferred_node_id"],
      ]);
      if (bad.length > 0) return reject([IA], bad);
      if (world.meetings.has(r.meeting_id as string)) return READ;
      return r.create ? UNSAFE : reject([NF]);
    }
    case "convene.v1.Coordinator/EndMeeting":
      if (!matches(r.meeting_id, MEETING_ID)) return reject([IA], ["meeting_id"]);
      return world.meetings.has(r.meeting_id as string) ? UNSAFE : reject([NF]);
    case "convene.v1.Coordinator/GetCheckpoint":
      if (!matches(r.meeting_id, MEETING_ID)) return reject([IA], ["meeting_id"]);
      return world.meetings.get(r.meeting_id as string)?.sequence !== undefined ? READ : reject([NF]);
    case "convene.v1.Coordinator/ListMeetings":
      return r.node_id === "" || matches(r.node_id, NODE_ID) ? READ : reject([IA], ["node_id"]);
    case "convene.v1.Coordinator/DrainNode": {
      if (!matches(r.node_id, NODE_ID)) return reject([IA], ["node_id"]);
      if (!isSafeUint(r.deadline_ms, 0)) return reject([IA], ["deadline_ms"]);
      if ((r.deadline_ms as number) > 0 && (r.migrate === true || (r.deadline_ms as number) > DAY_MS)) return reject([IA], ["deadline_ms"]);
      return world.nodes.has(r.node_id as string) ? UNSAFE : reject([NF]);
    }
    case "convene.v1.Coordinator/UndrainNode":
      if (!matches(r.node_id, NODE_ID)) return reject([IA], ["node_id"]);
      return world.nodes.has(r.node_id as string) ? UNSAFE : reject([NF]);
    case "convene.v1.Coordinator/WatchEvents":
      return isSafeUint(r.from_index, 0) ? READ : reject([IA], ["from_index"]);
    case "convene.v1.Coordinator/MoveMeeting": {
      const bad = invalid([
        [matches(r.meeting_id, MEETING_ID), "meeting_id"],
        [isNodeIdOrEmpty(r.to_node_id), "to_node_id"],
        [isDuration(r.timeout_ms), "timeout_ms"],
      ]);
      if (bad.length > 0) return reject([IA], bad);
      return world.meetings.has(r.meeting_id as string) ? UNSAFE : reject([NF]);
    }
    case "convene.v1.Coordinator/Rebalance": {
      const bad = invalid([
        [isSafeUint(r.max_moves, 0) && (r.max_moves as number) <= 1000, "max_moves"],
        [isSafeUint(r.max_in_flight, 0) && (r.max_in_flight as number) <= 1000, "max_in_flight"],
        [isShare(r.threshold), "threshold"],
        [isDuration(r.timeout_ms), "timeout_ms"],
      ]);
      if (bad.length > 0) return reject([IA], bad);
      return r.dry_run === true ? READ : UNSAFE;
    }
    case "convene.v1.Coordinator/TransferLeadership":
      return r.target_id === "" || members.has(r.target_id as string) ? UNSAFE : reject([FP]);
    case "convene.routes.v1.RouteFeed/WatchRoutes":
      return isSafeUint(r.from_revision, 0) ? READ : reject([IA], ["from_revision"]);
    case "convene.routes.v1.RouteFeed/ReportUpstreamFailure":
      if (!matches(r.node_id, NODE_ID)) return reject([IA], ["node_id"]);
      // A hint about a node nobody registered is ignored; one about a real node could make the leader suspect it.
      return world.nodes.has(r.node_id as string) ? UNSAFE : READ;
    case "convene.member.v1.MemberAdmin/AddLearner": {
      const bad = invalid([
        [matches(r.id, NODE_ID), "id"],
        [matches(r.address, ADMIN_HOST_PORT), "address"],
      ]);
      if (bad.length > 0) return reject([IA], bad);
      return members.has(r.id as string) ? reject([FP]) : UNSAFE;
    }
    case "convene.member.v1.MemberAdmin/Promote":
      // No learner exists in the fixture: every well-formed id is refused.
      return matches(r.id, NODE_ID) ? reject([FP]) : reject([IA], ["id"]);
    case "convene.member.v1.MemberAdmin/Remove":
    case "convene.member.v1.MemberAdmin/TransferLeadership":
      if (!matches(r.id, NODE_ID)) return reject([IA], ["id"]);
      return members.has(r.id as string) ? UNSAFE : reject([FP]);
    case "convene.member.v1.MemberAdmin/NodeConnection": {
      // A report of stream counts from a member (member_id set), else the older single open/close.
      if (typeof r.member_id === "string" && r.member_id !== "") return judgeStreamReport(r);
      const bad = invalid([
        [matches(r.node_id, NODE_ID), "node_id"],
        [isSafeUint(r.generation, 1), "generation"],
      ]);
      if (bad.length > 0) return reject([IA], bad);
      // An internal hint; about a node nobody registered it is ignored.
      return world.nodes.has(r.node_id as string) ? UNSAFE : READ;
    }
    case "convene.raft.v1.RaftTransport/Stream":
      return judgeRaftStream(world, memberId, frames, false);
    case "convene.raft.v1.RaftTransport/SendSnapshot":
      return judgeRaftStream(world, memberId, frames, true);
    case "grpc.health.v1.Health/Check":
      return world.healthServices.includes(r.service as string) ? READ : reject([NF]);
    case "convene.v1.Coordinator/ListNodes":
    case "convene.v1.Coordinator/ClusterStatus":
    case "convene.member.v1.MemberAdmin/Status":
    case "convene.member.v1.MemberAdmin/AuditLog":
    case "convene.member.v1.MemberAdmin/Snapshot":
    case "grpc.health.v1.Health/Watch":
    case "grpc.health.v1.Health/List":
    case "grpc.reflection.v1.ServerReflection/ServerReflectionInfo":
    case "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo":
      return READ;
    default:
      throw new Error(`no judge for ${method.id}: a new method needs its rules here`);
  }
}

/** Decodes each frame as the server will; the first that does not decode makes the call malformed. */
export function classify(world: FuzzWorld, c: GrpcCase): Verdict {
  if (c.frames[0] && c.frames[0].length > world.maxMessageBytes) return reject([RE]);
  const decoded: Req[] = [];
  for (const f of c.frames) {
    try {
      decoded.push(c.method.deserialize(f));
    } catch (err) {
      // A frame after a refused one is never read: judge what comes before it.
      const before = decoded.length > 0 ? judge(world, c.method, world.members[c.member]!.id, decoded) : undefined;
      if (before?.kind === "reject" && before.codes.includes(FP)) return before;
      return { kind: "malformed", reason: (err as Error).message };
    }
  }
  return judge(world, c.method, world.members[c.member]!.id, decoded);
}

// ---- typed request generators ----------------------------------------------------------------

function pick<T>(values: readonly T[]): fc.Arbitrary<T> {
  return fc.constantFrom(...values);
}

/** A value that is right most of the time and hostile otherwise; the judge sorts out which. */
function mostly<T>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<T>, badWeight = 1): fc.Arbitrary<T> {
  return fc.oneof({ weight: 2, arbitrary: good }, { weight: badWeight, arbitrary: bad });
}

function hugeOr(arb: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.oneof({ weight: 8, arbitrary: arb }, { weight: 1, arbitrary: repeated(1_000, 500_000) });
}

/** Typed hostile requests for one method, or undefined when only raw bytes make sense for it. */
export function typedRequests(world: FuzzWorld, method: MethodInfo): fc.Arbitrary<Req> | undefined {
  const nodes = [...world.nodes.entries()];
  const meetings = [...world.meetings.entries()];
  const memberIds = world.members.map((m) => m.id);
  const nodeId = fc.oneof(pick(nodes.map(([id]) => id)), badNodeId(), ghostId(64));
  const meetingId = fc.oneof(pick(meetings.map(([id]) => id)), badMeetingId(), ghostId(128));
  const generationFor = (id: string): fc.Arbitrary<number | string> => {
    const current = world.nodes.get(id)?.generation ?? 1;
    return fc.oneof(fc.constant(current), fc.integer({ min: 1, max: 1_000_000 }).map((d) => current + d), fc.integer({ min: 1, max: Math.max(1, current - 1) }), hostileLong());
  };
  const withNode = <T extends Req>(build: (id: string, generation: fc.Arbitrary<number | string>) => fc.Arbitrary<T>): fc.Arbitrary<T> =>
    nodeId.chain((id) => build(id, generationFor(id)));
  const region = mostly(fc.constant(""), fc.oneof(repeated(65, 5_000), fc.constantFrom("eu\u0000", "eu\nwest", "\u0085", "\u009b[2J")));
  const labels = mostly(
    fc.constant({}),
    fc.oneof(
      fc.constantFrom({ "": "x" }, { ["k".repeat(65)]: "v" }, { k: "v".repeat(257) }, { "k\u0000": "v" }, { k: "v\r\n" }),
      fc.integer({ min: 33, max: 200 }).map((n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, "v"]))),
    ),
  );

  switch (method.id) {
    case "convene.v1.NodeAgent/Register":
      return fc.record({
        node_id: mostly(ghostId(64), hugeOr(badNodeId())),
        address: mostly(fc.constant("127.0.0.1:9"), badAddress()),
        capacity: mostly(fc.constant(10), fc.constantFrom(0, -0, 0.4, Number.NaN, 2 ** 32)),
        region,
        labels,
        limits: mostly(fc.constant(null), fc.record({ cpu: badLoad(), net_in_bytes_per_sec: hostileLong(), participants: fc.nat() })),
      });
    case "convene.v1.NodeAgent/Heartbeat":
      return withNode((id, generation) =>
        fc.record({
          node_id: fc.constant(id),
          generation,
          active_meetings: fc.oneof(fc.nat(), hostileNumber()),
          load: mostly(fc.double({ min: 0, max: 1, noNaN: true }), badLoad()),
          cpu: mostly(fc.double({ min: 0, max: 1, noNaN: true }), badLoad()),
          net_in_bytes_per_sec: mostly(fc.nat(), hostileLong()),
          participants: fc.oneof(fc.nat(), hostileNumber()),
        }),
      );
    case "convene.v1.NodeAgent/HeartbeatStream": {
      const beat = typedRequests(world, { ...method, id: "convene.v1.NodeAgent/Heartbeat" })!;
      return fc.tuple(beat, fc.oneof(fc.nat(), hostileLong())).map(([b, sequence]) => ({ ...b, sequence }));
    }
    case "convene.v1.NodeAgent/WatchAssignments":
    case "convene.v1.NodeAgent/Deregister":
    case "convene.member.v1.MemberAdmin/NodeConnection":
      return withNode((id, generation) => fc.record({ node_id: fc.constant(id), generation, connected: fc.boolean() }));
    case "convene.v1.NodeAgent/SaveCheckpoint":
      return saveCheckpoints(world);
    case "convene.v1.NodeAgent/HandOver":
      return saveCheckpoints(world);
    case "convene.v1.NodeAgent/Drain":
      return withNode((id, generation) => fc.record({ node_id: fc.constant(id), generation, deadline_ms: fc.oneof(fc.constantFrom(0, DAY_MS, DAY_MS + 1), hostileLong()) }));
    case "convene.v1.Coordinator/WatchEvents":
      return fc.record({ from_index: hostileLong() });
    case "convene.v1.Coordinator/MoveMeeting":
      return fc.record({ meeting_id: hugeOr(meetingId), to_node_id: fc.oneof(fc.constant(""), nodeId), timeout_ms: fc.oneof(fc.constantFrom(0, 1, DAY_MS + 1, 2 ** 32 - 1), fc.nat()) });
    case "convene.v1.Coordinator/Rebalance":
      return fc.record({
        max_moves: fc.oneof(fc.nat(2_000), hostileNumber()),
        max_in_flight: fc.oneof(fc.nat(2_000), hostileNumber()),
        threshold: mostly(fc.double({ min: 0, max: 1, noNaN: true }), badLoad()),
        timeout_ms: fc.oneof(fc.constantFrom(0, DAY_MS + 1), fc.nat()),
        dry_run: fc.boolean(),
      });
    case "convene.v1.Coordinator/UndrainNode":
      return fc.record({ node_id: hugeOr(fc.oneof(badNodeId(), ghostId(64))) });
    case "convene.v1.Coordinator/GetRoute":
      return fc.record({
        meeting_id: hugeOr(meetingId),
        create: fc.boolean(),
        region,
        required_labels: labels,
        excluded_labels: labels,
        preferred_node_id: mostly(fc.constant(""), fc.oneof(badNodeId(), ghostId(64))),
      });
    case "convene.v1.Coordinator/EndMeeting":
    case "convene.v1.Coordinator/GetCheckpoint":
      return fc.record({ meeting_id: hugeOr(fc.oneof(badMeetingId(), ghostId(128))) });
    case "convene.v1.Coordinator/ListMeetings":
      return fc.record({ node_id: hugeOr(fc.oneof(badNodeId(), ghostId(64))), migrate: fc.boolean() });
    case "convene.v1.Coordinator/DrainNode":
      return fc.record({ node_id: hugeOr(fc.oneof(badNodeId(), ghostId(64))), migrate: fc.boolean(), deadline_ms: fc.oneof(fc.constant(0), fc.constantFrom(1, DAY_MS + 1), hostileLong()) });
    case "convene.v1.Coordinator/TransferLeadership":
      return fc.record({ target_id: hugeOr(fc.oneof(badNodeId(), ghostId(64), pick(memberIds.map((id) => ` ${id}`)))) });
    case "convene.routes.v1.RouteFeed/WatchRoutes":
      return fc.record({ from_revision: hostileLong() });
    case "convene.routes.v1.RouteFeed/ReportUpstreamFailure":
      return fc.record({ node_id: hugeOr(fc.oneof(badNodeId(), ghostId(64))), address: hugeOr(badAddress()), reason: hugeOr(fc.string()) });
    case "convene.member.v1.MemberAdmin/AddLearner":
      return fc.oneof(
        fc.record({ id: hugeOr(badNodeId()), address: mostly(fc.constant("127.0.0.1:9"), badAddress()) }),
        fc.record({ id: fc.oneof(ghostId(64), pick(memberIds)), address: badAddress() }),
        // An existing voter "re-added" with another address would repoint every member's link to it.
        fc.record({ id: pick(memberIds), address: fc.constantFrom("127.0.0.1:9", "evil.example:443") }),
      );
    case "convene.member.v1.MemberAdmin/Promote":
    case "convene.member.v1.MemberAdmin/Remove":
    case "convene.member.v1.MemberAdmin/TransferLeadership":
      return fc.record({ id: hugeOr(fc.oneof(badNodeId(), ghostId(64))), address: fc.oneof(fc.constant(""), badAddress()) });
    case "convene.member.v1.MemberAdmin/AuditLog":
      return fc.record({ limit: fc.oneof(fc.nat(), hostileNumber()) });
    case "convene.raft.v1.RaftTransport/Stream":
    case "convene.raft.v1.RaftTransport/SendSnapshot":
      return raftFrames(world, method.id.endsWith("SendSnapshot"));
    case "grpc.health.v1.Health/Check":
      return fc.record({ service: hugeOr(fc.oneof(fc.string(), badNodeId(), fc.constantFrom("convene.v1.Coordinator ", "CONVENE.V1.COORDINATOR", "convene.v1"))) });
    case "grpc.reflection.v1.ServerReflection/ServerReflectionInfo":
    case "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo":
      return fc.oneof(
        fc.record({ file_by_filename: hugeOr(fc.constantFrom("../../../etc/passwd", "/etc/passwd", "convene.proto\u0000", "%2e%2e/x.proto", "")) }),
        fc.record({ file_containing_symbol: hugeOr(fc.oneof(fc.string(), fc.constantFrom("convene.v1.", ".", "..", "convene.v1.NodeAgent.Nope"))) }),
        fc.record({ file_containing_extension: fc.record({ containing_type: fc.string(), extension_number: fc.integer() }) }),
        fc.record({ all_extension_numbers_of_type: hugeOr(fc.string()) }),
      );
    default:
      return undefined;
  }
}

/** SaveCheckpoint: a real owner's valid save with at least one thing wrong (fencing, ids, sizes). */
function saveCheckpoints(world: FuzzWorld): fc.Arbitrary<Req> {
  const owned = [...world.meetings.entries()].filter(([, m]) => world.nodes.has(m.owner));
  const otherNode = (id: string): string => [...world.nodes.keys()].find((n) => n !== id) ?? "zz-other";
  const base = fc.constantFrom(...owned).map(([meetingId, m]) => ({
    node_id: m.owner,
    generation: world.nodes.get(m.owner)!.generation,
    meeting_id: meetingId,
    epoch: m.epoch,
    sequence: (m.sequence ?? 0) + 1,
    state: Buffer.from("ok"),
    stored: m.sequence ?? -1,
  }));
  type Save = Req & { node_id: string; generation: number; epoch: number; stored: number };
  const defects: fc.Arbitrary<(r: Save) => Save>[] = [
    fc.constant((r: Save) => ({ ...r, node_id: otherNode(r.node_id) })),
    ghostId(64).map((id) => (r: Save) => ({ ...r, node_id: id })),
    badNodeId().map((id) => (r: Save) => ({ ...r, node_id: id })),
    fc.integer({ min: 1, max: 1000 }).map((d) => (r: Save) => ({ ...r, generation: r.generation + d })),
    fc.constant((r: Save) => ({ ...r, generation: Math.max(0, r.generation - 1) })),
    hostileLong().map((g) => (r: Save) => ({ ...r, generation: g as number })),
    fc.constantFrom(...world.meetings.keys()).map((id) => (r: Save) => ({ ...r, meeting_id: id, epoch: r.epoch + 7 })),
    ghostId(128).map((id) => (r: Save) => ({ ...r, meeting_id: id })),
    badMeetingId().map((id) => (r: Save) => ({ ...r, meeting_id: id })),
    fc.integer({ min: 1, max: 1_000_000 }).map((d) => (r: Save) => ({ ...r, epoch: r.epoch + d })),
    hostileLong().map((e) => (r: Save) => ({ ...r, epoch: e as number })),
    fc.constant((r: Save) => ({ ...r, sequence: Math.max(0, r.stored - 1) })),
    fc.constant((r: Save) => ({ ...r, sequence: r.stored, state: Buffer.from("not what is stored") })),
    hostileLong().map((s) => (r: Save) => ({ ...r, sequence: s })),
    fc.integer({ min: world.maxCheckpointBytes + 1, max: world.maxCheckpointBytes + 150_000 }).map((n) => (r: Save) => ({ ...r, state: Buffer.alloc(n, 0x61) })),
  ];
  return fc
    .tuple(base, fc.array(fc.oneof(...defects), { minLength: 1, maxLength: 3 }))
    .map(([b, fs]) => {
      const { stored: _stored, ...req } = fs.reduce((r, f) => f(r), b as Save);
      return req;
    });
}

/** Raft batches and snapshot chunks: misaddressed, or addressed right with contents that do not decode, from an impostor. */
function raftFrames(world: FuzzWorld, snapshot: boolean): fc.Arbitrary<Req> {
  const memberIds = world.members.map((m) => m.id);
  const bytes = fc.oneof(garbageBytes(), fc.constant(new Uint8Array(0)));
  const addressing = {
    cluster_id: mostly(fc.constant(world.clusterId), fc.oneof(fc.constantFrom("", "CONVENE", "convene ", "other"), repeated(100, 100_000)), 1),
    from: fc.oneof(fc.constantFrom("zz-impostor", "", "n9"), badNodeId()),
    // "to" is filled in per member by the test: either that member or another.
    to: fc.oneof(fc.constant("@self"), pick(memberIds), fc.constantFrom("", "n9"), repeated(100, 10_000)),
  };
  return snapshot ? fc.record({ ...addressing, header: bytes, data: bytes }) : fc.record({ ...addressing, messages: bytes });
}

/** Raw request bytes for a method: garbled versions of its typed requests, or of a generic message. */
export function rawFrames(world: FuzzWorld, method: MethodInfo): fc.Arbitrary<Buffer> {
  const typed = typedRequests(world, method);
  const valid = typed
    ? typed.map((r) => {
        try {
          return method.serialize(r);
        } catch {
          return Buffer.from([0x0a, 0x01, 0x78]);
        }
      })
    : fc.constant(Buffer.from([0x0a, 0x03, 0x61, 0x62, 0x63, 0x10, 0x01]));
  return garbledMessage(valid.map((b) => (b.length > 1 ? b : Buffer.from([0x0a, 0x03, 0x61, 0x62, 0x63]))));
}
