/**
 * The whole coordinator state as bytes and back, for Raft snapshots.
 *
 * Format: [u32 big-endian header length][header][checkpoint bytes…]
 *   header (msgpackr, plain arrays so 100,000 meetings cost no key names):
 *   { v: 2, clockMs, appliedIndex, nodes: [...], retired: [...],
 *     meetings: [...], checkpoints: [... with the state's length ...], audit: [...] }
 *   then every checkpoint's state, concatenated in the order of the rows.
 *   Format 3 (cluster version 2 on, formats.ts) adds `clusterVersion` after
 *   appliedIndex, `incarnations` and each audit row's term. Format 4
 *   (cluster version 3 on) adds, after the audit, each node's limits, load
 *   and drain deadline, the meetings' excluded labels and hand-overs under
 *   way, and the event log with its floor (state-snapshot-extras.ts). A
 *   member writes the format of the cluster version it has applied, so
 *   every member can read it, and reads every older one; a newer format
 *   stops it (NewerFormatError) rather than be taken for a corrupt
 *   snapshot. A state read from a format before 4 has no limits, load,
 *   hand-overs or excluded labels (none can exist before cluster version 3)
 *   and knows no event before its applied index.
 * Checkpoint bytes are most of a large state (100,000 meetings × 1 KiB), so
 * they bypass msgpackr, whose shared output buffer would otherwise grow to
 * the snapshot's size and stay that big for the life of the process.
 *
 * Memory: the snapshot is kept by the log storage anyway (a leader sends
 * it to followers that fall behind), so the state shares its checkpoint
 * bytes with it instead of holding a second copy: a decoded state's
 * checkpoints are views into the snapshot, and `encodeState` rebinds the
 * encoded state's checkpoints to views into the new bytes.
 *
 * Each list keeps the maps' insertion order, so `encodeState(decodeState(b))`
 * equals `b` byte for byte and a restored state iterates exactly like the
 * original. Derived indexes are not stored; they are rebuilt and the
 * invariants checked on decode. The config is not stored (see
 * state-config.ts).
 */
import { Packr } from "msgpackr";
import { BrokenInvariantError, NewerFormatError } from "./errors.js";
import { CLUSTER_VERSIONS, NEWEST_CLUSTER_VERSION, formatsAt } from "./formats.js";
import type { Labels } from "./labels.js";
import { NO_LABELS } from "./labels.js";
import type { AuditEntry, CheckpointRecord, Liveness, MeetingRecord, NodeRecord } from "./model.js";
import { NO_LIMITS, NO_LOAD } from "./node-load.js";
import { type SnapshotExtras, captureExtras, meetingExtraRow, restoreExtras } from "./state-snapshot-extras.js";
import type { CoordinatorStateConfig } from "./state-config.js";
import { CoordinatorState } from "./state.js";

/** The newest snapshot format this build reads and writes; it reads every one from 2. */
export const NEWEST_SNAPSHOT_FORMAT = 4;
const LENGTH_BYTES = 4;

const packr = new Packr({ useRecords: false, moreTypes: false, copyBuffers: true });

type NodeRow = [string, string, number, string, Labels, number, Liveness, boolean, readonly number[], number, number, number, number];
type MeetingRow = [string, string, number, number, number, string, Labels];
/** The state itself follows the header; the row has its length. */
type CheckpointRow = [string, string, number, number, number, number];
/** Format 3 adds the term; format 2's rows stop at the summary. */
type AuditRow = [number, string, number, boolean, string, string, number?];

interface SnapshotBody extends Partial<SnapshotExtras> {
  v: number;
  clockMs: number;
  appliedIndex: number;
  /** Format 3 on. */
  clusterVersion?: number;
  nodes: NodeRow[];
  retired: [string, number][];
  meetings: MeetingRow[];
  checkpoints: CheckpointRow[];
  audit: AuditRow[];
  /**
   * Each node's incarnation token, where it has one. A field of its own (not
   * a column of the node rows) so a snapshot stays readable by members
   * that know nothing of it.
   */
  incarnations?: [string, string][];
}

/** Checkpoints handled per step of an encoding: about 10 ms of work on this machine. */
const CHECKPOINTS_PER_STEP = 8_000;
/** Rows of a list packed per step: a few ms. Packing 60,000 meetings at once blocked a member for 20–90 ms. */
const ROWS_PER_STEP = 5_000;
/** The lists of short rows, packed ROWS_PER_STEP at a time. */
const LONG_ROWS: ReadonlySet<string> = new Set(["meetings", "checkpoints", "events", "meetingExtras"]);
/** Rows of any other list (nodes: labels and recent deaths in every row) packed per step. */
const WIDE_ROWS_PER_STEP = 1_000;

/** The whole state as snapshot bytes, at once. */
export function encodeState(state: CoordinatorState): Uint8Array {
  const steps = encodeSteps(state);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/**
 * The encoding as steps of bounded work, so a large state (over a second
 * for 100 MB of checkpoints on a loaded member, longer than an election
 * timeout) does not block the event loop: the driver yields between them.
 * The first step captures what apply mutates in place (nodes, the audit,
 * the extras) and the lists of meeting and checkpoint records, pointers
 * only: a first step that copied every meeting held the loop for 45–130 ms
 * at 240,000 meetings. Checkpoint records are replaced, never mutated; a
 * meeting record is written only through CoordinatorState, which tells
 * the encoding first, and the encoding then keeps a copy of that meeting
 * as it was. So commands applied between steps change nothing in the
 * output. With `shareWithState` (a snapshot the storage keeps) the
 * state's checkpoints become views into the output; a backup, which leaves
 * the process, passes false.
 */
export function* encodeSteps(state: CoordinatorState, shareWithState = true): Generator<void, Uint8Array, void> {
  const format = formatsAt(state.clusterVersion).snapshot;
  // Key order is part of the bytes: format 2's must stay as every older release writes it.
  const body: SnapshotBody = {
    v: format,
    clockMs: state.clockMs,
    appliedIndex: state.appliedIndex,
    ...(format >= 3 ? { clusterVersion: state.clusterVersion } : {}),
    nodes: [...state.nodes.values()].map((n) => [
      n.id,
      n.address,
      n.capacity,
      n.region,
      n.labels,
      n.generation,
      n.liveness,
      n.draining,
      n.deathsMs,
      n.heldOutUntilMs,
      n.recent.bucket,
      n.recent.current,
      n.recent.previous,
    ]),
    retired: [...state.retiredGenerations],
    // Format 3 on: format 2 is read by the previous release, byte for byte as it writes it.
    ...(format >= 3 ? { incarnations: [...state.nodes.values()].filter((n) => n.incarnation !== "").map((n) => [n.id, n.incarnation] as [string, string]) } : {}),
    meetings: [],
    checkpoints: [],
    audit: state.audit.list().map((a): AuditRow => (format >= 3 ? [a.index, a.kind, a.nowMs, a.ok, a.code, a.summary, a.term] : [a.index, a.kind, a.nowMs, a.ok, a.code, a.summary])),
    // Format 4 on: format 3 is read by members of cluster version 2, byte for byte as they write it.
    ...(format >= 4 ? captureExtras(state) : {}),
  };
  const meetings = [...state.meetings.values()];
  const checkpoints = [...state.checkpoints.values()];
  // Meetings as they were at the start, for those written since; meetings created since are not in the list.
  const startIndex = state.appliedIndex;
  const asOfStart = new Map<MeetingRecord, MeetingRecord>();
  const stopWatching = state.watchMeetingChanges((m) => {
    if (m.createdIndex <= startIndex && !asOfStart.has(m)) asOfStart.set(m, { ...m });
  });
  try {
    for (let i = 0; i < meetings.length; i++) {
      const m = asOfStart.get(meetings[i]!) ?? meetings[i]!;
      body.meetings.push([m.id, m.owner, m.epoch, m.createdIndex, m.createdAtMs, m.region, m.requiredLabels]);
      if (format >= 4) {
        const extra = meetingExtraRow(m);
        if (extra) body.meetingExtras!.push(extra);
      }
      if ((i + 1) % ROWS_PER_STEP === 0) yield;
    }
  } finally {
    stopWatching();
  }
  let total = LENGTH_BYTES;
  for (let i = 0; i < checkpoints.length; i++) {
    const c = checkpoints[i]!;
    body.checkpoints.push([c.meetingId, c.nodeId, c.epoch, c.sequence, c.state.length, c.savedAtMs]);
    total += c.state.length;
    if ((i + 1) % CHECKPOINTS_PER_STEP === 0) yield;
  }
  yield;
  const header = yield* packHeader(body);
  total += header.length;
  yield;
  // Its own allocation (not Node's shared pool), exactly the snapshot's size.
  const out = Buffer.allocUnsafeSlow(total);
  out.writeUInt32BE(header.length, 0);
  out.set(header, LENGTH_BYTES);
  let at = LENGTH_BYTES + header.length;
  for (let i = 0; i < checkpoints.length; i++) {
    const c = checkpoints[i]!;
    out.set(c.state, at);
    // Same bytes, now shared with the snapshot the storage keeps, unless a
    // later save replaced the record meanwhile. Replacing a key's value
    // keeps the map's order.
    if (shareWithState && state.checkpoints.get(c.meetingId) === c) state.checkpoints.set(c.meetingId, { ...c, state: out.subarray(at, at + c.state.length) });
    at += c.state.length;
    if ((i + 1) % CHECKPOINTS_PER_STEP === 0) yield;
  }
  return out;
}

/**
 * The header as msgpack, every list packed a chunk per step: the meetings
 * and checkpoints, and the nodes too (10,000 node rows packed at once held
 * every member 100–250 ms at each snapshot, all three at the same index,
 * and made the leader answer heartbeats late). The result is one msgpack
 * map, decoded by one `unpack` like any other: a map header, then each key
 * and value; a list is an array header followed by its rows, and a chunk
 * packed as an array is its rows behind an array header, which is dropped.
 */
function* packHeader(body: SnapshotBody): Generator<void, Buffer, void> {
  const parts: Uint8Array[] = [];
  const entries = Object.entries(body);
  parts.push(mapHeader(entries.length));
  for (const [key, value] of entries) {
    // Copies: msgpackr may reuse its output buffer for the next pack.
    parts.push(Buffer.from(packr.pack(key)));
    if (!Array.isArray(value)) {
      parts.push(Buffer.from(packr.pack(value)));
      continue;
    }
    const rows = value as unknown[];
    const perStep = LONG_ROWS.has(key) ? ROWS_PER_STEP : WIDE_ROWS_PER_STEP;
    parts.push(arrayHeader(rows.length));
    for (let i = 0; i < rows.length; i += perStep) {
      const chunk = packr.pack(rows.slice(i, i + perStep));
      parts.push(Buffer.from(chunk.subarray(arrayHeaderLength(chunk))));
      yield;
    }
  }
  return Buffer.concat(parts);
}

function mapHeader(size: number): Uint8Array {
  if (size >= 16) throw new BrokenInvariantError(`snapshot header has ${size} keys; a fixmap holds 15`);
  return Uint8Array.of(0x80 | size);
}

function arrayHeader(length: number): Uint8Array {
  if (length < 16) return Uint8Array.of(0x90 | length);
  if (length < 0x10000) return Uint8Array.of(0xdc, length >>> 8, length & 0xff);
  const b = Buffer.alloc(5);
  b[0] = 0xdd;
  b.writeUInt32BE(length, 1);
  return b;
}

/** Bytes of the array header at the start of packed `bytes` (fixarray, array 16 or array 32). */
function arrayHeaderLength(bytes: Uint8Array): number {
  const first = bytes[0]!;
  if ((first & 0xf0) === 0x90) return 1;
  if (first === 0xdc) return 3;
  if (first === 0xdd) return 5;
  throw new BrokenInvariantError(`packed rows start with 0x${first.toString(16)}, not an array header`);
}

/** A new state from snapshot bytes; throws BrokenInvariantError if they are not one. */
export function decodeState(data: Uint8Array, config: CoordinatorStateConfig): CoordinatorState {
  let body: SnapshotBody;
  const view = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const headerLength = data.length >= LENGTH_BYTES ? view.readUInt32BE(0) : -1;
  if (headerLength < 0 || LENGTH_BYTES + headerLength > data.length) {
    throw new BrokenInvariantError(`snapshot of ${data.length} bytes is shorter than its header`);
  }
  try {
    body = packr.unpack(view.subarray(LENGTH_BYTES, LENGTH_BYTES + headerLength)) as SnapshotBody;
  } catch (err) {
    throw new BrokenInvariantError(`snapshot could not be decoded (${data.length} bytes)`, { cause: err });
  }
  if (typeof body === "object" && body !== null && typeof body.v === "number" && body.v > NEWEST_SNAPSHOT_FORMAT) {
    throw new NewerFormatError(`snapshot format ${body.v} is newer than this member reads (2..${NEWEST_SNAPSHOT_FORMAT}): the cluster version was raised past this release; run a newer one`);
  }
  if (typeof body !== "object" || body === null || (body.v !== 2 && body.v !== 3 && body.v !== 4)) {
    throw new BrokenInvariantError(`snapshot version must be 2, 3 or 4`);
  }
  const format = body.v;
  // Before format 4 no event log was kept: the state knows none before its applied index.
  const extras = format >= 4 ? (body as SnapshotBody & SnapshotExtras) : undefined;
  if (extras && !(Number.isSafeInteger(extras.eventFloor) && extras.eventFloor >= 0 && extras.eventFloor <= body.appliedIndex)) {
    throw new BrokenInvariantError(`snapshot format 4 must name an event floor from 0 to its applied index, got ${String(extras.eventFloor)}`);
  }
  const state = new CoordinatorState(config, extras ? extras.eventFloor : body.appliedIndex);
  state.clockMs = body.clockMs;
  state.appliedIndex = body.appliedIndex;
  if (format >= 3) {
    const v = body.clusterVersion;
    const lowest = lowestVersionWriting(format);
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < lowest) {
      throw new BrokenInvariantError(`snapshot format ${format} must name a cluster version of at least ${lowest}, got ${String(v)}`);
    }
    if (v > NEWEST_CLUSTER_VERSION) throw new NewerFormatError(`snapshot of cluster version ${v}, newer than this member knows (1..${NEWEST_CLUSTER_VERSION}): run a newer release`);
    state.clusterVersion = v;
  }
  // Filed for placement by rebuildDerived below, all at once.
  for (const row of rows(body.nodes, "nodes", 13)) state.addNode(nodeFromRow(row as NodeRow), false);
  for (const [id, generation] of rows(body.retired, "retired", 2)) state.retiredGenerations.set(id as string, generation as number);
  for (const [id, token] of rows(body.incarnations ?? [], "incarnations", 2)) {
    const node = state.nodes.get(id as string);
    if (!node || typeof token !== "string") throw new BrokenInvariantError(`snapshot incarnation of unknown node ${JSON.stringify(id)}`);
    node.incarnation = token;
  }
  for (const row of rows(body.meetings, "meetings", 7)) {
    const [id, owner, epoch, createdIndex, createdAtMs, region, requiredLabels] = row as MeetingRow;
    const meeting: MeetingRecord = {
      id,
      owner,
      epoch,
      createdIndex,
      createdAtMs,
      region,
      requiredLabels: labelsFromRow(requiredLabels),
      excludedLabels: NO_LABELS,
      move: undefined,
    };
    state.meetings.set(id, meeting);
  }
  let at = LENGTH_BYTES + headerLength;
  for (const row of rows(body.checkpoints, "checkpoints", 6)) {
    const [meetingId, nodeId, epoch, sequence, length, savedAtMs] = row as CheckpointRow;
    if (!Number.isSafeInteger(length) || length < 0 || at + length > data.length) {
      throw new BrokenInvariantError(`snapshot checkpoint of ${JSON.stringify(meetingId)} runs past the end of the snapshot`);
    }
    const checkpoint: CheckpointRecord = { meetingId, nodeId, epoch, sequence, state: data.subarray(at, at + length), savedAtMs };
    at += length;
    state.checkpoints.set(meetingId, checkpoint);
  }
  if (at !== data.length) throw new BrokenInvariantError(`snapshot has ${data.length - at} bytes after its last checkpoint`);
  for (const row of rows(body.audit, "audit", format >= 3 ? 7 : 6)) {
    const [index, kind, nowMs, ok, code, summary, term] = row as AuditRow;
    const entry: AuditEntry = { index, kind, nowMs, ok, code, summary, term: term ?? 0 };
    state.audit.append(entry);
  }
  if (extras) restoreExtras(state, extras);
  // Checks the records as it files them.
  state.rebuildDerived();
  return state;
}

/** The first cluster version that writes snapshot format `format`. */
function lowestVersionWriting(format: number): number {
  const row = CLUSTER_VERSIONS.find((v) => v.formats.snapshot === format);
  if (!row) throw new BrokenInvariantError(`no cluster version writes snapshot format ${format}`);
  return row.version;
}

function rows(list: unknown, field: string, width: number): unknown[][] {
  if (!Array.isArray(list)) throw new BrokenInvariantError(`snapshot ${field} must be a list`);
  for (const row of list) {
    if (!Array.isArray(row) || row.length !== width) throw new BrokenInvariantError(`snapshot ${field} rows must have ${width} fields`);
  }
  return list as unknown[][];
}

function nodeFromRow(row: NodeRow): NodeRecord {
  const [id, address, capacity, region, labels, generation, liveness, draining, deathsMs, heldOutUntilMs, bucket, current, previous] = row;
  return {
    id,
    address,
    capacity,
    region,
    labels: labelsFromRow(labels),
    generation,
    incarnation: "",
    liveness,
    draining,
    deathsMs: [...deathsMs],
    heldOutUntilMs,
    recent: { bucket, current, previous },
    assigned: 0,
    limits: NO_LIMITS,
    load: NO_LOAD,
    drainDeadlineMs: 0,
  };
}

function labelsFromRow(labels: Labels): Labels {
  return labels.map(([k, v]) => [k, v] as const);
}
