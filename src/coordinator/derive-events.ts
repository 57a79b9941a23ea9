/**
 * The events (event-log.ts) one applied command makes, derived from the
 * command, its result, the assignment events it produced and what the
 * state held before it: apply-command.ts calls `captureBefore` first and
 * `deriveEvents` last, so no apply path needs to know about events.
 *
 * Order within a command: the node's own event first (NODE_DEAD before the
 * moves it causes), then one event per meeting change in the order apply
 * made them:
 *   REVOKED then ASSIGNED of one meeting   MEETING_MOVED from → to (the same node when
 *                                           it registered again and kept the meeting)
 *   REVOKED of a meeting that ended         MEETING_ENDED
 *   REVOKED alone                           MEETING_MOVED from → "" (it waits for room)
 *   ASSIGNED of the meeting created         MEETING_CREATED
 *   ASSIGNED alone                          MEETING_MOVED "" → to, reason PLACED
 *   HANDOVER                                MEETING_MOVE_STARTED
 */
import type { CommandResult } from "./command-results.js";
import type { Command } from "./commands.js";
import type { EventDraft } from "./event-log.js";
import type { AssignmentEvent, Liveness, MoveReason, PendingMove } from "./model.js";
import type { CoordinatorState } from "./state.js";

/** What a command's events compare against: its node and its meeting as they were. */
export interface Before {
  readonly node?: { readonly generation: number; readonly liveness: Liveness; readonly draining: boolean; readonly drainDeadlineMs: number };
  readonly move?: PendingMove;
}

export function captureBefore(state: CoordinatorState, command: Command): Before {
  const nodeId = "nodeId" in command ? command.nodeId : undefined;
  const node = nodeId === undefined ? undefined : state.nodes.get(nodeId);
  const meetingId = "meetingId" in command ? command.meetingId : undefined;
  const move = meetingId === undefined ? undefined : state.meetings.get(meetingId)?.move;
  return {
    ...(node ? { node: { generation: node.generation, liveness: node.liveness, draining: node.draining, drainDeadlineMs: node.drainDeadlineMs } } : {}),
    ...(move ? { move } : {}),
  };
}

/** Why the meetings a command took from a node moved. */
function moveReason(command: Command, before: Before): MoveReason {
  switch (command.type) {
    case "setLiveness":
      return "NODE_DEAD";
    case "drainNode":
      return "DRAIN";
    case "deregister":
      return "NODE_LEFT";
    case "register":
      return "NODE_REREGISTERED";
    case "completeMove":
    case "expireMove":
      return before.move?.reason ?? "PLANNED_MOVE";
    default:
      return "PLACED";
  }
}

export function deriveEvents(state: CoordinatorState, command: Command, result: CommandResult, events: readonly AssignmentEvent[], before: Before): EventDraft[] {
  if (!result.ok) return [];
  const drafts: EventDraft[] = [];
  const node = nodeEvent(state, command, result, before);
  if (node) drafts.push(node);
  const reason = moveReason(command, before);
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    const meetingId = e.meetingId;
    if (e.type === "HANDOVER") {
      const move = state.meetings.get(meetingId)?.move;
      drafts.push({ type: "MEETING_MOVE_STARTED", meetingId, nodeId: e.nodeId, fromNodeId: e.nodeId, toNodeId: move?.toNodeId ?? "", epoch: e.epoch, reason: move?.reason ?? "" });
      continue;
    }
    if (e.type === "REVOKED") {
      const next = events[i + 1];
      if (next && next.type === "ASSIGNED" && next.meetingId === meetingId) {
        i++;
        drafts.push({
          type: "MEETING_MOVED",
          meetingId,
          nodeId: next.nodeId,
          fromNodeId: e.nodeId,
          toNodeId: next.nodeId,
          epoch: next.epoch,
          reason,
          checkpointSequence: next.checkpoint?.sequence ?? 0,
          finalCheckpoint: command.type === "completeMove" && command.meetingId === meetingId,
        });
      } else if (!state.meetings.has(meetingId)) {
        drafts.push({ type: "MEETING_ENDED", meetingId, nodeId: e.nodeId, epoch: e.epoch });
      } else {
        drafts.push({ type: "MEETING_MOVED", meetingId, fromNodeId: e.nodeId, epoch: e.epoch, reason });
      }
      continue;
    }
    if (command.type === "createMeeting" && result.type === "createMeeting" && result.created && command.meetingId === meetingId) {
      drafts.push({ type: "MEETING_CREATED", meetingId, nodeId: e.nodeId, toNodeId: e.nodeId, epoch: e.epoch });
      continue;
    }
    drafts.push({ type: "MEETING_MOVED", meetingId, nodeId: e.nodeId, toNodeId: e.nodeId, epoch: e.epoch, reason: "PLACED", checkpointSequence: e.checkpoint?.sequence ?? 0 });
  }
  if (command.type === "endMeeting" && !events.some((e) => e.type === "REVOKED")) {
    // It was waiting unassigned: no REVOKED, but it ended all the same.
    drafts.push({ type: "MEETING_ENDED", meetingId: command.meetingId });
  }
  return drafts;
}

function nodeEvent(state: CoordinatorState, command: Command, result: CommandResult, before: Before): EventDraft | undefined {
  if (!("nodeId" in command) || !result.ok) return undefined;
  const nodeId = command.nodeId;
  const node = state.nodes.get(nodeId);
  const generation = node?.generation ?? ("generation" in command ? command.generation : 0);
  switch (command.type) {
    case "register":
      // A repeated Register of the registered incarnation changes nothing.
      return before.node?.generation === generation ? undefined : { type: "NODE_REGISTERED", nodeId, generation };
    case "setLiveness":
      if (result.type !== "setLiveness" || !result.changed) return undefined;
      return { type: `NODE_${result.liveness}`, nodeId, generation };
    case "drainNode":
    case "scheduleDrain": {
      const deadline = node?.drainDeadlineMs ?? 0;
      if (before.node?.draining && before.node.drainDeadlineMs === deadline) return undefined;
      return { type: "NODE_DRAINING", nodeId, generation, drainDeadlineMs: deadline };
    }
    case "undrain":
      return before.node?.draining ? { type: "NODE_UNDRAINED", nodeId, generation } : undefined;
    case "deregister":
      return { type: "NODE_DEREGISTERED", nodeId, generation };
    default:
      return undefined;
  }
}
