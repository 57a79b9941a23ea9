/**
 * Coordinator.WatchEvents' two enums (proto/convene.proto EventType and
 * MoveReason) by wire number: entry i names value i. The replicated
 * state's events carry the same names (without the unspecified zero), so
 * the members that store and stream them, the relay that posts them and
 * `convene events` that prints them read one list.
 */
export const EVENT_TYPE_NAMES = [
  "EVENT_TYPE_UNSPECIFIED",
  "MEETING_CREATED",
  "MEETING_MOVE_STARTED",
  "MEETING_MOVED",
  "MEETING_ENDED",
  "NODE_REGISTERED",
  "NODE_ALIVE",
  "NODE_SUSPECT",
  "NODE_DEAD",
  "NODE_DRAINING",
  "NODE_UNDRAINED",
  "NODE_DEREGISTERED",
] as const;

export type EventType = Exclude<(typeof EVENT_TYPE_NAMES)[number], "EVENT_TYPE_UNSPECIFIED">;

/** Every event type, in wire order. */
export const EVENT_TYPES: readonly EventType[] = EVENT_TYPE_NAMES.filter((n): n is EventType => n !== "EVENT_TYPE_UNSPECIFIED");

/** MoveReason without its REASON_ prefix (proto3 enum values share a scope); "" for the unspecified zero. */
export const MOVE_REASON_NAMES = ["", "NODE_DEAD", "DRAIN", "PLANNED_MOVE", "REBALANCE", "NODE_LEFT", "PLACED", "NODE_REREGISTERED"] as const;

/** Why a meeting moved. */
export type MoveReason = Exclude<(typeof MOVE_REASON_NAMES)[number], "">;

export function eventTypeNumber(type: EventType): number {
  return EVENT_TYPE_NAMES.indexOf(type);
}

export function moveReasonNumber(reason: MoveReason | ""): number {
  return MOVE_REASON_NAMES.indexOf(reason);
}
