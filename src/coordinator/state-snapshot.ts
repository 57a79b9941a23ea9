/**
 * The whole coordinator state as bytes and back, for Raft snapshots.
 *
 * Format (msgpackr, plain arrays so 100,000 meetings cost no key names):
 *   { v: 1, clockMs, appliedIndex, nodes: [...], retired: [...],
 *     meetings: [...], checkpoints: [...], audit: [...] }
 * Each list keeps the maps' insertion order, so `encodeState(decodeState(b))`
 * equals `b` byte for byte and a restored state iterates exactly like the
 * original. Derived indexes are not stored; they are rebuilt and the
 * invariants checked on decode. The config is not stored (see
 * state-config.ts).
 */
import { Packr } from "msgpackr";
import { BrokenInvariantError } from "./errors.js";
import type { Labels } from "./labels.js";
import type { AuditEntry, CheckpointRecord, Liveness, MeetingRecord, NodeRecord } from "./model.js";
import type { CoordinatorStateConfig } from "./state-config.js";
import { CoordinatorState } from "./state.js";

const SNAPSHOT_VERSION = 1;

const packr = new Packr({ useRecords: false, moreTypes: false, copyBuffers: true });

type NodeRow = [string, string, number, string, Labels, number, Liveness, boolean, readonly number[], number, number, number, number];
type MeetingRow = [string, string, number, number, number, string, Labels];
type CheckpointRow = [string, string, number, number, Uint8Array, number];
type AuditRow = [number, string, number, boolean, string, string];

interface SnapshotBody {
  v: number;
  clockMs: number;
  appliedIndex: number;
  nodes: NodeRow[];
  retired: [string, number][];
  meetings: MeetingRow[];
  checkpoints: CheckpointRow[];
  audit: AuditRow[];
}

export function encodeState(state: CoordinatorState): Uint8Array {
  const body: SnapshotBody = {
    v: SNAPSHOT_VERSION,
    clockMs: state.clockMs,
    appliedIndex: state.appliedIndex,
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
    meetings: [...state.meetings.values()].map((m) => [m.id, m.owner, m.epoch, m.createdIndex, m.createdAtMs, m.region, m.requiredLabels]),
    checkpoints: [...state.checkpoints.values()].map((c) => [c.meetingId, c.nodeId, c.epoch, c.sequence, c.state, c.savedAtMs]),
    audit: state.audit.list().map((a) => [a.index, a.kind, a.nowMs, a.ok, a.code, a.summary]),
  };
  return packr.pack(body);
}

/** A new state from snapshot bytes; throws BrokenInvariantError if they are not one. */
export function decodeState(data: Uint8Array, config: CoordinatorStateConfig): CoordinatorState {
  let body: SnapshotBody;
  try {
    body = packr.unpack(data) as SnapshotBody;
  } catch (err) {
    throw new BrokenInvariantError(`snapshot could not be decoded (${data.length} bytes)`, { cause: err });
  }
  if (typeof body !== "object" || body === null || body.v !== SNAPSHOT_VERSION) {
    throw new BrokenInvariantError(`snapshot version must be ${SNAPSHOT_VERSION}`);
  }
  const state = new CoordinatorState(config);
  state.clockMs = body.clockMs;
  state.appliedIndex = body.appliedIndex;
  for (const row of rows(body.nodes, "nodes", 13)) state.addNode(nodeFromRow(row as NodeRow));
  for (const [id, generation] of rows(body.retired, "retired", 2)) state.retiredGenerations.set(id as string, generation as number);
  for (const row of rows(body.meetings, "meetings", 7)) {
    const [id, owner, epoch, createdIndex, createdAtMs, region, requiredLabels] = row as MeetingRow;
    const meeting: MeetingRecord = { id, owner, epoch, createdIndex, createdAtMs, region, requiredLabels: labelsFromRow(requiredLabels) };
    state.meetings.set(id, meeting);
  }
  for (const row of rows(body.checkpoints, "checkpoints", 6)) {
    const [meetingId, nodeId, epoch, sequence, bytes, savedAtMs] = row as CheckpointRow;
    const checkpoint: CheckpointRecord = { meetingId, nodeId, epoch, sequence, state: bytes, savedAtMs };
    state.checkpoints.set(meetingId, checkpoint);
  }
  for (const row of rows(body.audit, "audit", 6)) {
    const [index, kind, nowMs, ok, code, summary] = row as AuditRow;
    const entry: AuditEntry = { index, kind, nowMs, ok, code, summary };
    state.audit.append(entry);
  }
  state.rebuildDerived();
  state.checkInvariants();
  return state;
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
    liveness,
    draining,
    deathsMs: [...deathsMs],
    heldOutUntilMs,
    recent: { bucket, current, previous },
    assigned: 0,
  };
}

function labelsFromRow(labels: Labels): Labels {
  return labels.map(([k, v]) => [k, v] as const);
}
