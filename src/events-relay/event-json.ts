/**
 * An event of Coordinator.WatchEvents as the relay posts it and `convene
 * events` prints it: the proto message with camelCase keys and enum names
 * instead of numbers. Checked on the way in: a watcher must never pass on
 * (or persist a cursor past) something that is not an event.
 */
import { EVENT_TYPE_NAMES, MOVE_REASON_NAMES } from "../wire/event-types.js";

export interface EventJson {
  readonly id: string;
  readonly index: number;
  readonly position: number;
  readonly atMs: number;
  readonly type: string;
  readonly meetingId: string;
  readonly nodeId: string;
  readonly fromNodeId: string;
  readonly toNodeId: string;
  readonly epoch: number;
  readonly reason: string;
  readonly checkpointSequence: number;
  readonly finalCheckpoint: boolean;
  readonly generation: number;
  readonly drainDeadlineMs: number;
}

export interface EventBatchJson {
  readonly index: number;
  readonly events: readonly EventJson[];
}

export class BadEventError extends Error {
  readonly code = "BAD_EVENT";
}

function uint(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) throw new BadEventError(`${field} must be a non-negative integer, got ${String(value)}`);
  return value;
}

function str(value: unknown, field: string): string {
  if (typeof value !== "string") throw new BadEventError(`${field} must be a string`);
  return value;
}

/** One EventBatch as decoded by proto-loader (keepCase, longs and enums as numbers). */
export function parseBatch(raw: unknown): EventBatchJson {
  if (raw === null || typeof raw !== "object") throw new BadEventError("an event batch must be a message");
  const b = raw as Record<string, unknown>;
  const index = uint(b["index"], "EventBatch.index");
  const list = b["events"];
  if (!Array.isArray(list)) throw new BadEventError("EventBatch.events must be a list");
  const events = list.map((e: unknown, i): EventJson => {
    if (e === null || typeof e !== "object") throw new BadEventError(`EventBatch.events[${i}] must be a message`);
    const m = e as Record<string, unknown>;
    const type = EVENT_TYPE_NAMES[uint(m["type"], "Event.type")];
    const reason = MOVE_REASON_NAMES[uint(m["reason"], "Event.reason")];
    if (type === undefined || type === "EVENT_TYPE_UNSPECIFIED") throw new BadEventError(`Event.type ${String(m["type"])} is not one this build knows`);
    const event: EventJson = {
      id: str(m["id"], "Event.id"),
      index: uint(m["index"], "Event.index"),
      position: uint(m["position"], "Event.position"),
      atMs: uint(m["at_ms"], "Event.at_ms"),
      type,
      meetingId: str(m["meeting_id"], "Event.meeting_id"),
      nodeId: str(m["node_id"], "Event.node_id"),
      fromNodeId: str(m["from_node_id"], "Event.from_node_id"),
      toNodeId: str(m["to_node_id"], "Event.to_node_id"),
      epoch: uint(m["epoch"], "Event.epoch"),
      reason: reason ?? String(m["reason"]),
      checkpointSequence: uint(m["checkpoint_sequence"], "Event.checkpoint_sequence"),
      finalCheckpoint: m["final_checkpoint"] === true,
      generation: uint(m["generation"], "Event.generation"),
      drainDeadlineMs: uint(m["drain_deadline_ms"], "Event.drain_deadline_ms"),
    };
    if (event.index !== index || event.position !== i || event.id !== `${index}:${i}`) {
      throw new BadEventError(`event ${event.id} is out of place in the batch of index ${index} (position ${i})`);
    }
    return event;
  });
  return { index, events };
}

/** One line for people: "1234:0 MEETING_MOVED room-1 m1 → m2 epoch 3 PLANNED_MOVE checkpoint 7 (final)". */
export function describeEvent(e: EventJson): string {
  const at = new Date(e.atMs).toISOString();
  const subject = e.meetingId || e.nodeId;
  const parts = [e.id, at, e.type, subject];
  if (e.type === "MEETING_MOVED" || e.type === "MEETING_MOVE_STARTED") parts.push(`${e.fromNodeId || "-"} → ${e.toNodeId || "-"}`, e.reason);
  else if (e.meetingId && e.nodeId) parts.push(`on ${e.nodeId}`);
  if (e.meetingId) parts.push(`epoch ${e.epoch}`);
  if (e.checkpointSequence) parts.push(`checkpoint ${e.checkpointSequence}${e.finalCheckpoint ? " (final)" : ""}`);
  if (!e.meetingId && e.generation) parts.push(`generation ${e.generation}`);
  if (e.drainDeadlineMs) parts.push(`hands over at ${new Date(e.drainDeadlineMs).toISOString()}`);
  return parts.join(" ");
}
