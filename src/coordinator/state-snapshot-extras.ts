/**
 * The parts of a snapshot that issue 19 added, each under a key of its own: each node's
 * declared limits, reported load and drain deadline; the meetings'
 * excluded labels and moves under way (only for meetings that have
 * either, so a large state of plain meetings costs nothing more); and the
 * event log with its floor. state-snapshot.ts reads a snapshot without
 * them (written before they existed) as having none: its event floor is
 * its applied index, since the events before it are unknown.
 */
import { BrokenInvariantError } from "./errors.js";
import { type CoordinatorEvent, EVENT_TYPES, type EventType } from "./event-log.js";
import type { Labels } from "./labels.js";
import type { HandOverReason, MeetingRecord, MoveReason } from "./model.js";
import type { CoordinatorState } from "./state.js";

/** cpu, in, out, participants limits; the same figures reported, reportedAtMs; drainDeadlineMs. Parallel to the nodes' rows. */
export type NodeExtraRow = [number, number, number, number, number, number, number, number, number, number];
/** id, excludedLabels, move: toNodeId, reason, startedAtMs, deadlineMs ("" reason: no move). */
export type MeetingExtraRow = [string, Labels, string, string, number, number];
export type EventRow = [number, number, number, string, string, string, string, string, number, string, number, boolean, number, number];

export interface SnapshotExtras {
  nodeExtras: NodeExtraRow[];
  meetingExtras: MeetingExtraRow[];
  events: EventRow[];
  eventFloor: number;
}

/**
 * What a snapshot holds beyond the rows, as of now; `meetingExtras` is
 * left empty for the caller, which passes over the meetings anyway
 * (meetingExtraRow, one meeting at a time).
 */
export function captureExtras(state: CoordinatorState): SnapshotExtras {
  return {
    nodeExtras: [...state.nodes.values()].map((n) => [
      n.limits.cpuPermille,
      n.limits.netInBytesPerSec,
      n.limits.netOutBytesPerSec,
      n.limits.participants,
      n.load.cpuPermille,
      n.load.netInBytesPerSec,
      n.load.netOutBytesPerSec,
      n.load.participants,
      n.load.reportedAtMs,
      n.drainDeadlineMs,
    ]),
    meetingExtras: [],
    events: state.events.list().map((e) => [
      e.index,
      e.position,
      e.atMs,
      e.type,
      e.meetingId,
      e.nodeId,
      e.fromNodeId,
      e.toNodeId,
      e.epoch,
      e.reason,
      e.checkpointSequence,
      e.finalCheckpoint,
      e.generation,
      e.drainDeadlineMs,
    ]),
    eventFloor: state.events.floor,
  };
}

/** A meeting's row of excluded labels and move under way, or undefined when it has neither. */
export function meetingExtraRow(m: MeetingRecord): MeetingExtraRow | undefined {
  if (m.excludedLabels.length === 0 && !m.move) return undefined;
  return [m.id, m.excludedLabels, m.move?.toNodeId ?? "", m.move?.reason ?? "", m.move?.startedAtMs ?? 0, m.move?.deadlineMs ?? 0];
}

/** Sets what `extras` holds on a state whose nodes and meetings are already decoded (in snapshot order). */
export function restoreExtras(state: CoordinatorState, extras: SnapshotExtras): void {
  const nodes = [...state.nodes.values()];
  const nodeRows = rows(extras.nodeExtras, "nodeExtras", 10);
  if (nodeRows.length !== nodes.length) throw new BrokenInvariantError(`snapshot has ${nodeRows.length} node extras for ${nodes.length} nodes`);
  nodeRows.forEach((row, i) => {
    const [cpuL, inL, outL, partL, cpu, netIn, netOut, part, reportedAtMs, drainDeadlineMs] = row as NodeExtraRow;
    const node = nodes[i]!;
    node.limits = { cpuPermille: cpuL, netInBytesPerSec: inL, netOutBytesPerSec: outL, participants: partL };
    node.load = { cpuPermille: cpu, netInBytesPerSec: netIn, netOutBytesPerSec: netOut, participants: part, reportedAtMs };
    node.drainDeadlineMs = drainDeadlineMs;
  });
  for (const row of rows(extras.meetingExtras, "meetingExtras", 6)) {
    const [id, excludedLabels, toNodeId, reason, startedAtMs, deadlineMs] = row as MeetingExtraRow;
    const meeting = state.meetings.get(id);
    if (!meeting) throw new BrokenInvariantError(`snapshot has extras of unknown meeting ${JSON.stringify(id)}`);
    state.meetings.set(id, {
      ...meeting,
      excludedLabels: excludedLabels.map(([k, v]) => [k, v] as const),
      move: reason === "" ? undefined : { toNodeId, reason: reason as HandOverReason, startedAtMs, deadlineMs },
    });
  }
  const events = rows(extras.events, "events", 14).map((row): CoordinatorEvent => {
    const [index, position, atMs, type, meetingId, nodeId, fromNodeId, toNodeId, epoch, reason, checkpointSequence, finalCheckpoint, generation, drainDeadlineMs] = row as EventRow;
    if (!EVENT_TYPES.includes(type as EventType)) throw new BrokenInvariantError(`snapshot event ${index}:${position} has unknown type ${JSON.stringify(type)}`);
    return {
      index,
      position,
      atMs,
      type: type as EventType,
      meetingId,
      nodeId,
      fromNodeId,
      toNodeId,
      epoch,
      reason: reason as MoveReason | "",
      checkpointSequence,
      finalCheckpoint,
      generation,
      drainDeadlineMs,
    };
  });
  state.events.restore(events);
}

function rows(list: unknown, field: string, width: number): unknown[][] {
  if (!Array.isArray(list)) throw new BrokenInvariantError(`snapshot ${field} must be a list`);
  for (const row of list) {
    if (!Array.isArray(row) || row.length !== width) throw new BrokenInvariantError(`snapshot ${field} rows must have ${width} fields`);
  }
  return list as unknown[][];
}
