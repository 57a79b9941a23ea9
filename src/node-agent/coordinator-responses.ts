/**
 * Checks of everything the coordinator sends back to the agent. No answer,
 * however malformed, may crash the host: each parser either returns a typed
 * value or throws a BadResponseError naming the field, which the agent
 * reports and survives (a bad answer counts as a failed call or an ignored
 * event). Messages arrive decoded by proto-loader with keepCase, longs as
 * Number and enums as Number (src/member/proto.ts), so a uint64 above 2^53
 * shows up as an unsafe number and is refused rather than rounded.
 */
import { describeValue as shown, idProblem } from "../wire/describe.js";
import { BadResponseError } from "./errors.js";

/** A meeting's saved state, as the coordinator hands it over on assignment. */
export interface Checkpoint {
  readonly meetingId: string;
  /** The node that saved it (may be another node: the meeting moved). */
  readonly nodeId: string;
  readonly epoch: number;
  /** Per meeting: the new owner's saves continue from here. */
  readonly sequence: number;
  readonly state: Uint8Array;
  readonly savedAtMs: number;
}

export type AssignmentEvent =
  | { readonly type: "ASSIGNED"; readonly meetingId: string; readonly epoch: number; readonly checkpoint: Checkpoint | undefined }
  | { readonly type: "REVOKED"; readonly meetingId: string; readonly epoch: number }
  | { readonly type: "HANDOVER"; readonly meetingId: string; readonly epoch: number };

/** AssignmentEvent.Type in proto/convene.proto. */
const ASSIGNED = 1;
const REVOKED = 2;
const HANDOVER = 3;

/** HandOverResponse: where the meeting went. */
export interface HandOverAnswer {
  readonly sequence: number;
  readonly toNodeId: string;
  readonly epoch: number;
}

export interface Registration {
  readonly generation: number;
  readonly heartbeatIntervalMs: number;
  readonly leaseTtlMs: number;
}

export interface HeartbeatAnswer {
  /** 0 when the coordinator did not say. */
  readonly leaseTtlMs: number;
  readonly draining: boolean;
}

/** Heartbeat intervals outside this range are clamped into it (and reported). */
export const MIN_HEARTBEAT_INTERVAL_MS = 10;
export const MAX_HEARTBEAT_INTERVAL_MS = 60_000;

function record(raw: unknown, what: string): Record<string, unknown> {
  if (raw === null || typeof raw !== "object") throw new BadResponseError(`${what} must be a message, got ${shown(raw)}`);
  return raw as Record<string, unknown>;
}

function uint(raw: unknown, field: string, min = 0): number {
  if (typeof raw !== "number" || !Number.isSafeInteger(raw) || raw < min) {
    throw new BadResponseError(`${field} must be an integer in ${min}..2^53-1, got ${shown(raw)}`);
  }
  return raw;
}

function meetingId(raw: unknown, field: string): string {
  const problem = idProblem("meeting", raw);
  if (typeof raw !== "string" || problem) {
    throw new BadResponseError(`${field} ${problem}`);
  }
  return raw;
}

/** RegisterResponse: the node id must be ours and the generation at least 1. */
export function parseRegisterResponse(raw: unknown, nodeId: string): Registration & { readonly clamped: boolean } {
  const r = record(raw, "RegisterResponse");
  // An empty node_id is tolerated (proto3 default); another node's id is not.
  if (r["node_id"] !== "" && r["node_id"] !== nodeId) {
    throw new BadResponseError(`RegisterResponse.node_id must be ${JSON.stringify(nodeId)}, got ${shown(r["node_id"])}`);
  }
  const generation = uint(r["generation"], "RegisterResponse.generation", 1);
  const interval = uint(r["heartbeat_interval_ms"], "RegisterResponse.heartbeat_interval_ms");
  const leaseTtlMs = uint(r["lease_ttl_ms"], "RegisterResponse.lease_ttl_ms");
  const heartbeatIntervalMs = Math.min(MAX_HEARTBEAT_INTERVAL_MS, Math.max(MIN_HEARTBEAT_INTERVAL_MS, interval));
  return { generation, heartbeatIntervalMs, leaseTtlMs, clamped: heartbeatIntervalMs !== interval };
}

export function parseHeartbeatResponse(raw: unknown): HeartbeatAnswer {
  const r = record(raw, "HeartbeatResponse");
  const draining = r["draining"];
  if (typeof draining !== "boolean") throw new BadResponseError(`HeartbeatResponse.draining must be a boolean, got ${shown(draining)}`);
  return { leaseTtlMs: uint(r["lease_ttl_ms"], "HeartbeatResponse.lease_ttl_ms"), draining };
}

export function parseHandOverResponse(raw: unknown): HandOverAnswer {
  const r = record(raw, "HandOverResponse");
  const toNodeId = r["to_node_id"];
  const problem = idProblem("node", toNodeId);
  if (typeof toNodeId !== "string" || problem) throw new BadResponseError(`HandOverResponse.to_node_id ${problem}`);
  return { sequence: uint(r["sequence"], "HandOverResponse.sequence"), toNodeId, epoch: uint(r["epoch"], "HandOverResponse.epoch", 1) };
}

/** NodeDrainResponse: when the coordinator hands the remaining meetings over. */
export function parseNodeDrainResponse(raw: unknown): number {
  return uint(record(raw, "NodeDrainResponse")["deadline_at_ms"], "NodeDrainResponse.deadline_at_ms");
}

export function parseSaveCheckpointResponse(raw: unknown): number {
  return uint(record(raw, "SaveCheckpointResponse")["sequence"], "SaveCheckpointResponse.sequence");
}

function parseCheckpoint(raw: unknown, eventMeetingId: string): Checkpoint | undefined {
  if (raw === null || raw === undefined) return undefined;
  const c = record(raw, "AssignmentEvent.checkpoint");
  const id = c["meeting_id"];
  // Empty is the proto3 default for a field the server left unset: it can only mean this meeting.
  if (id !== "" && id !== eventMeetingId) {
    throw new BadResponseError(`AssignmentEvent.checkpoint.meeting_id must be ${JSON.stringify(eventMeetingId)}, got ${shown(id)}`);
  }
  const nodeId = c["node_id"];
  if (typeof nodeId !== "string" || (nodeId !== "" && idProblem("node", nodeId))) {
    throw new BadResponseError(`AssignmentEvent.checkpoint.node_id ${idProblem("node", nodeId)}`);
  }
  const state = c["state"];
  if (!(state instanceof Uint8Array)) throw new BadResponseError(`AssignmentEvent.checkpoint.state must be bytes, got ${shown(state)}`);
  return {
    meetingId: eventMeetingId,
    nodeId,
    epoch: uint(c["epoch"], "AssignmentEvent.checkpoint.epoch"),
    sequence: uint(c["sequence"], "AssignmentEvent.checkpoint.sequence"),
    state,
    savedAtMs: uint(c["saved_at_ms"], "AssignmentEvent.checkpoint.saved_at_ms"),
  };
}

/**
 * ListMeetingsResponse filtered to this node: meeting id → epoch of the
 * routes it owns. Routes naming another node are left out (the filter is
 * the server's; a route that does not name us is not ours).
 */
export function parseOwnedMeetings(raw: unknown, nodeId: string): Map<string, number> {
  const meetings = record(raw, "ListMeetingsResponse")["meetings"];
  if (!Array.isArray(meetings)) throw new BadResponseError(`ListMeetingsResponse.meetings must be a list, got ${shown(meetings)}`);
  const owned = new Map<string, number>();
  meetings.forEach((raw, i) => {
    const route = record(raw, `ListMeetingsResponse.meetings[${i}]`);
    if (route["node_id"] !== nodeId) return;
    owned.set(meetingId(route["meeting_id"], `ListMeetingsResponse.meetings[${i}].meeting_id`), uint(route["epoch"], `ListMeetingsResponse.meetings[${i}].epoch`));
  });
  return owned;
}

/** A list answer's next_page_token: "" on the last page (and from servers that predate paging). */
export function parseNextPageToken(raw: unknown, message: string): string {
  const token = record(raw, message)["next_page_token"];
  if (token === undefined || token === null) return "";
  if (typeof token !== "string") throw new BadResponseError(`${message}.next_page_token must be a string, got ${shown(token)}`);
  return token;
}

/** One message of the WatchAssignments stream. Unknown types are refused (the caller ignores the event). */
export function parseAssignmentEvent(raw: unknown): AssignmentEvent {
  const e = record(raw, "AssignmentEvent");
  const id = meetingId(e["meeting_id"], "AssignmentEvent.meeting_id");
  switch (e["type"]) {
    case ASSIGNED:
      return { type: "ASSIGNED", meetingId: id, epoch: uint(e["epoch"], "AssignmentEvent.epoch", 1), checkpoint: parseCheckpoint(e["checkpoint"], id) };
    case REVOKED:
      // 0 (unset) is accepted: a REVOKED that does not say which epoch revokes whatever is held.
      return { type: "REVOKED", meetingId: id, epoch: uint(e["epoch"], "AssignmentEvent.epoch") };
    case HANDOVER:
      return { type: "HANDOVER", meetingId: id, epoch: uint(e["epoch"], "AssignmentEvent.epoch", 1) };
    default:
      throw new BadResponseError(`AssignmentEvent.type must be ASSIGNED (1), REVOKED (2) or HANDOVER (3), got ${shown(e["type"])}`);
  }
}
