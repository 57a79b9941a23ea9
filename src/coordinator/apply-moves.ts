/**
 * Apply paths of the move commands (move-commands.ts), under the rules of
 * apply-command.ts: deterministic, a refusal decided before any change.
 *
 * A hand-over's life: startMove (or rebalance, or drainDue) records the
 * pending move and sends HANDOVER to the owner's watch stream. The owner
 * stops writing to the meeting and sends its final state: completeMove
 * stores it and, in the same command, moves the meeting (epoch + 1) to
 * the requested node, or to placement's choice when that node can no
 * longer take it, or back to the owner itself when no node can: the
 * owner then gets the meeting back at a new epoch with its own final
 * checkpoint, so nothing is lost either way. If the owner does not
 * answer by the deadline, expireMove makes the same move with the last
 * checkpoint saved, exactly as a failover would, and the owner's late
 * writes are fenced by the new epoch.
 */
import { type CommandFailure, assertNever, failure } from "./errors.js";
import type { AssignmentEvent, HandOverReason, MeetingRecord } from "./model.js";
import type {
  CompleteMoveCommand,
  CompleteMoveResult,
  DrainDueCommand,
  DrainDueResult,
  ExpireMoveCommand,
  ExpireMoveResult,
  MoveCommand,
  MoveResult,
  RebalanceCommand,
  RebalanceResult,
  ScheduleDrainCommand,
  ScheduleDrainResult,
  StartMoveCommand,
  StartMoveResult,
  UndrainCommand,
  UndrainResult,
} from "./move-commands.js";
import { ineligibility } from "./placement.js";
import type { CoordinatorState } from "./state.js";

type Handled<R> = { readonly result: R | CommandFailure; readonly summary: string };

export function applyMoveCommand(state: CoordinatorState, command: MoveCommand, events: AssignmentEvent[]): Handled<MoveResult> {
  switch (command.type) {
    case "startMove":
      return applyStartMove(state, command, events);
    case "completeMove":
      return applyCompleteMove(state, command, events);
    case "expireMove":
      return applyExpireMove(state, command, events);
    case "rebalance":
      return applyRebalance(state, command, events);
    case "scheduleDrain":
      return applyScheduleDrain(state, command);
    case "drainDue":
      return applyDrainDue(state, command, events);
    case "undrain":
      return applyUndrain(state, command);
    default:
      return assertNever(command);
  }
}

function startMove(state: CoordinatorState, meeting: MeetingRecord, toNodeId: string, reason: HandOverReason, timeoutMs: number, events: AssignmentEvent[]): number {
  const deadlineMs = state.clockMs + timeoutMs;
  state.startMove(meeting, { toNodeId, reason, startedAtMs: state.clockMs, deadlineMs }, events);
  return deadlineMs;
}

function applyStartMove(state: CoordinatorState, c: StartMoveCommand, events: AssignmentEvent[]): Handled<StartMoveResult> {
  const subject = `${c.meetingId}${c.toNodeId ? ` to ${c.toNodeId}` : ""}`;
  const meeting = state.meetings.get(c.meetingId);
  if (!meeting) return refused(subject, failure("NOT_FOUND", `meeting ${c.meetingId} does not exist`));
  if (meeting.owner === "") {
    return refused(subject, failure("FAILED_PRECONDITION", `meeting ${c.meetingId} waits unassigned; it is placed as soon as a node has room`));
  }
  const from = meeting.owner;
  if (meeting.move) {
    if (meeting.move.toNodeId === c.toNodeId) {
      const result: StartMoveResult = { ok: true, type: "startMove", meetingId: c.meetingId, fromNodeId: from, toNodeId: c.toNodeId, epoch: meeting.epoch, deadlineMs: meeting.move.deadlineMs, started: false };
      return { result, summary: `${subject}: already under way` };
    }
    const where = meeting.move.toNodeId || "placement's choice";
    return refused(subject, failure("FAILED_PRECONDITION", `a move of meeting ${c.meetingId} to ${where} is already under way`));
  }
  if (c.toNodeId === from) return refused(subject, failure("FAILED_PRECONDITION", `meeting ${c.meetingId} is already on ${from}`));
  const request = state.placementRequest(meeting, from);
  if (c.toNodeId !== "") {
    const target = state.nodes.get(c.toNodeId);
    if (!target) return refused(subject, failure("NOT_FOUND", `node ${c.toNodeId} is not registered`));
    const why = ineligibility(target, request);
    if (why !== "") {
      return refused(subject, failure(why === "full" || why === "over-limit" ? "RESOURCE_EXHAUSTED" : "FAILED_PRECONDITION", `node ${c.toNodeId} cannot take meeting ${c.meetingId}: it is ${describe(why)}`));
    }
  } else if (state.findNodeFor(meeting, from) === undefined) {
    return refused(subject, failure("RESOURCE_EXHAUSTED", `no other node can take meeting ${c.meetingId}: ${state.explainNoRoom(meeting, from)}`));
  }
  const deadlineMs = startMove(state, meeting, c.toNodeId, "PLANNED_MOVE", c.timeoutMs, events);
  return {
    result: { ok: true, type: "startMove", meetingId: c.meetingId, fromNodeId: from, toNodeId: c.toNodeId, epoch: meeting.epoch, deadlineMs, started: true },
    summary: `${c.meetingId} on ${from} epoch ${meeting.epoch}: hand-over to ${c.toNodeId || "placement's choice"} by ${deadlineMs}`,
  };
}

/** The node a hand-over ends on: the requested one if it still can take it, else placement's choice, else the owner. */
function handOverTarget(state: CoordinatorState, meeting: MeetingRecord): string {
  const requested = meeting.move?.toNodeId ?? "";
  const target = requested !== "" ? state.nodes.get(requested) : undefined;
  if (target && ineligibility(target, state.placementRequest(meeting, meeting.owner)) === "") return requested;
  return state.findNodeFor(meeting, meeting.owner) ?? meeting.owner;
}

/** Revoke from the owner and assign to `to` (epoch + 1, with the stored checkpoint). */
function moveTo(state: CoordinatorState, meeting: MeetingRecord, to: string, events: AssignmentEvent[]): void {
  state.revoke(meeting, events);
  state.assign(meeting, to, events);
}

function applyCompleteMove(state: CoordinatorState, c: CompleteMoveCommand, events: AssignmentEvent[]): Handled<CompleteMoveResult> {
  const subject = `${c.meetingId} sequence ${c.sequence} from ${c.nodeId} generation ${c.generation} epoch ${c.epoch}`;
  const limit = state.config.maxCheckpointBytes;
  if (c.state.length > limit) return refused(subject, failure("RESOURCE_EXHAUSTED", `state is ${c.state.length} bytes, over the limit of ${limit} bytes`));
  const node = state.nodes.get(c.nodeId);
  if (!node) return refused(subject, failure("FAILED_PRECONDITION", `node ${c.nodeId} is not registered, so it owns no meeting`));
  if (node.generation !== c.generation) {
    return refused(subject, failure("FAILED_PRECONDITION", `generation ${c.generation} is stale; node ${c.nodeId} is at generation ${node.generation}`));
  }
  if (node.liveness === "DEAD") return refused(subject, failure("FAILED_PRECONDITION", `node ${c.nodeId} was declared dead; it must register again`));
  const meeting = state.meetings.get(c.meetingId);
  if (!meeting) return refused(subject, failure("FAILED_PRECONDITION", `meeting ${c.meetingId} does not exist (ended?), so ${c.nodeId} does not own it`));
  if (meeting.owner !== c.nodeId || meeting.epoch !== c.epoch) {
    const now = meeting.owner === "" ? `waits unassigned at epoch ${meeting.epoch}` : `is owned by ${meeting.owner} at epoch ${meeting.epoch}`;
    return refused(subject, failure("FAILED_PRECONDITION", `${c.nodeId} at epoch ${c.epoch} does not own meeting ${c.meetingId}: it ${now}`));
  }
  if (!meeting.move) return refused(subject, failure("FAILED_PRECONDITION", `no hand-over of meeting ${c.meetingId} is under way`));
  const stored = state.checkpoints.get(c.meetingId);
  if (stored && c.sequence <= stored.sequence) {
    return refused(subject, failure("FAILED_PRECONDITION", `sequence ${c.sequence} is not above the stored ${stored.sequence}; the final checkpoint needs a higher one`));
  }
  const reason = meeting.move.reason;
  const to = handOverTarget(state, meeting);
  const store = () => state.storeCheckpoint({ meetingId: c.meetingId, nodeId: c.nodeId, epoch: c.epoch, sequence: c.sequence, state: c.state, savedAtMs: state.clockMs });
  if (state.config.bugs?.moveBeforeFinalCheckpoint) {
    moveTo(state, meeting, to, events);
    store();
  } else {
    // Stored first: the assignment carries the final checkpoint.
    store();
    moveTo(state, meeting, to, events);
  }
  return {
    result: { ok: true, type: "completeMove", sequence: c.sequence, toNodeId: to, epoch: meeting.epoch },
    summary: `${subject} (${c.state.length} bytes, final): ${reason} → ${to} epoch ${meeting.epoch}`,
  };
}

function applyExpireMove(state: CoordinatorState, c: ExpireMoveCommand, events: AssignmentEvent[]): Handled<ExpireMoveResult> {
  const subject = `${c.meetingId} epoch ${c.epoch}`;
  const meeting = state.meetings.get(c.meetingId);
  if (!meeting || meeting.epoch !== c.epoch || !meeting.move) {
    return { result: { ok: true, type: "expireMove", expired: false, toNodeId: "" }, summary: `${subject}: no hand-over under way any more` };
  }
  if (state.clockMs < meeting.move.deadlineMs) {
    return refused(subject, failure("FAILED_PRECONDITION", `the hand-over of meeting ${c.meetingId} is not due until ${meeting.move.deadlineMs}`));
  }
  const from = meeting.owner;
  const reason = meeting.move.reason;
  const to = handOverTarget(state, meeting);
  moveTo(state, meeting, to, events);
  const sequence = state.checkpoints.get(c.meetingId)?.sequence;
  return {
    result: { ok: true, type: "expireMove", expired: true, toNodeId: to },
    summary: `${subject}: ${from} did not hand over in time; ${reason} → ${to} epoch ${meeting.epoch} with ${sequence === undefined ? "no checkpoint" : `checkpoint ${sequence}`}`,
  };
}

function applyRebalance(state: CoordinatorState, c: RebalanceCommand, events: AssignmentEvent[]): Handled<RebalanceResult> {
  const moves = state.planRebalance({ maxMoves: c.maxMoves, maxInFlight: c.maxInFlight, thresholdPermille: c.thresholdPermille });
  for (const m of moves) startMove(state, state.meetingOrThrow(m.meetingId), m.toNodeId, "REBALANCE", c.timeoutMs, events);
  const inFlight = state.pendingMoves().filter((m) => m.reason === "REBALANCE").length;
  const list = moves.map((m) => `${m.meetingId} ${m.fromNodeId} → ${m.toNodeId}`).join(", ");
  return {
    result: { ok: true, type: "rebalance", moves, inFlight },
    summary: `threshold ${c.thresholdPermille / 1000}: ${moves.length} hand-overs${list ? ` (${list})` : ""}, ${inFlight} under way`,
  };
}

function applyScheduleDrain(state: CoordinatorState, c: ScheduleDrainCommand): Handled<ScheduleDrainResult> {
  const subject = `${c.nodeId} in ${c.afterMs} ms`;
  const node = state.nodes.get(c.nodeId);
  if (!node) return refused(subject, failure("NOT_FOUND", `node ${c.nodeId} is not registered`));
  if (c.generation !== 0 && node.generation !== c.generation) {
    return refused(subject, failure("FAILED_PRECONDITION", `generation ${c.generation} is stale; node ${c.nodeId} is at generation ${node.generation}`));
  }
  node.draining = true;
  node.drainDeadlineMs = state.clockMs + c.afterMs;
  state.nodeChanged(node);
  return {
    result: { ok: true, type: "scheduleDrain", deadlineMs: node.drainDeadlineMs },
    summary: `${c.nodeId}: draining; its ${node.assigned} meetings are handed over at ${node.drainDeadlineMs} unless they end first`,
  };
}

function applyDrainDue(state: CoordinatorState, c: DrainDueCommand, events: AssignmentEvent[]): Handled<DrainDueResult> {
  const subject = c.nodeId;
  const node = state.nodes.get(c.nodeId);
  if (!node) return refused(subject, failure("NOT_FOUND", `node ${c.nodeId} is not registered`));
  if (!node.draining || node.drainDeadlineMs === 0 || state.clockMs < node.drainDeadlineMs) {
    return refused(subject, failure("FAILED_PRECONDITION", `node ${c.nodeId} has no drain deadline that has passed`));
  }
  let started = 0;
  let stayed = 0;
  for (const meetingId of state.ownedSorted(node.id)) {
    const meeting = state.meetingOrThrow(meetingId);
    if (meeting.move) continue;
    // A meeting no other node can take stays where it is served, as DrainNode's does.
    if (state.findNodeFor(meeting, node.id) === undefined) {
      stayed++;
      continue;
    }
    startMove(state, meeting, "", "DRAIN", c.timeoutMs, events);
    started++;
  }
  return { result: { ok: true, type: "drainDue", started, stayed }, summary: `${c.nodeId}: drain deadline passed; ${started} hand-overs started, ${stayed} stay (no room elsewhere)` };
}

function applyUndrain(state: CoordinatorState, c: UndrainCommand): Handled<UndrainResult> {
  const node = state.nodes.get(c.nodeId);
  if (!node) return refused(c.nodeId, failure("NOT_FOUND", `node ${c.nodeId} is not registered`));
  const wasDraining = node.draining;
  node.draining = false;
  node.drainDeadlineMs = 0;
  state.nodeChanged(node);
  return { result: { ok: true, type: "undrain", wasDraining }, summary: `${c.nodeId}: ${wasDraining ? "takes new meetings again" : "was not draining"}` };
}

function describe(why: string): string {
  switch (why) {
    case "over-limit":
      return "at a declared load limit";
    case "labels":
      return "without the meeting's required labels";
    case "excluded-labels":
      return "carrying a label the meeting excludes";
    case "suspect":
      return "suspected dead";
    default:
      return why;
  }
}

function refused(subject: string, f: CommandFailure): { result: CommandFailure; summary: string } {
  return { result: f, summary: subject };
}
