/**
 * One apply path per command. Called only by CoordinatorStateMachine.apply
 * with a decoded, validated command and its log index.
 *
 * Rules every handler keeps:
 *   - Deterministic: it reads only the command and the state. Time is the
 *     state's clock, advanced to the command's `nowMs` first.
 *   - A refusal is returned as a CommandFailure and is decided before any
 *     change, so a refused command changes nothing (but the clock, the
 *     audit log, and the step below).
 *   - Waiting meetings: after every command except saveCheckpoint (the
 *     frequent one, which frees no room) the state places unassigned
 *     meetings that now fit; createMeeting does it first instead, so older
 *     waiting meetings get room before a new one.
 *   - Anything thrown is a broken invariant: the member stops.
 *   - Events: what the command changed, as applications see it, is derived
 *     at the end (derive-events.ts) and kept in the state's event log.
 */
import type {
  ApplyOutcome,
  CommandResult,
  CreateMeetingResult,
  DeregisterResult,
  DrainNodeResult,
  EndMeetingResult,
  PlaceUnassignedResult,
  RegisterResult,
  SaveCheckpointResult,
  SetLivenessResult,
} from "./command-results.js";
import type {
  Command,
  CreateMeetingCommand,
  DeregisterCommand,
  DrainNodeCommand,
  EndMeetingCommand,
  RegisterCommand,
  SaveCheckpointCommand,
  SetLivenessCommand,
} from "./commands.js";
import { applyMoveCommand } from "./apply-moves.js";
import { captureBefore, deriveEvents } from "./derive-events.js";
import { type CommandFailure, assertNever, failure } from "./errors.js";
import { completeEvent } from "./event-log.js";
import { applySetClusterVersion } from "./apply-cluster-version.js";
import { recordDeath } from "./flap-damping.js";
import { NO_LABELS, labelsToString } from "./labels.js";
import { applyReportLoad } from "./load-commands.js";
import type { AssignmentEvent, MeetingRecord, NodeRecord } from "./model.js";
import { NO_LIMITS, NO_LOAD } from "./node-load.js";
import { noRecentPlacements } from "./recent-placements.js";
import type { CoordinatorState } from "./state.js";

type Handled<R> = { readonly result: R | CommandFailure; readonly summary: string };

/** `term`: the proposing leader's term as the command carries it (command version 2 on; 0 before). */
export function applyCommand(state: CoordinatorState, command: Command, index: number, term = 0): ApplyOutcome {
  state.advanceClock(command.nowMs);
  const events: AssignmentEvent[] = [];
  const before = captureBefore(state, command);
  const handled = dispatch(state, command, index, events);
  let summary = handled.summary;
  if (command.type !== "saveCheckpoint" && command.type !== "createMeeting" && command.type !== "placeUnassigned") {
    const placed = state.placeUnassigned(events);
    if (placed > 0) summary += `; placed ${placed} waiting meetings`;
  }
  state.appliedIndex = index;
  const result: CommandResult = handled.result;
  const drafts = deriveEvents(state, command, result, events, before);
  state.events.append(drafts.map((draft, position) => completeEvent(draft, index, position, state.clockMs)));
  state.audit.append({
    index,
    kind: command.type,
    nowMs: state.clockMs,
    ok: result.ok,
    code: result.ok ? "" : result.code,
    summary: result.ok ? summary : `${summary}: ${result.message}`,
    term,
  });
  if (state.config.checkPlacementIndex) state.checkPlacementIndex();
  return { index, result, events };
}

function dispatch(state: CoordinatorState, command: Command, index: number, events: AssignmentEvent[]): Handled<CommandResult> {
  switch (command.type) {
    case "register":
      return applyRegister(state, command, events);
    case "setLiveness":
      return applySetLiveness(state, command, events);
    case "createMeeting":
      return applyCreateMeeting(state, command, index, events);
    case "endMeeting":
      return applyEndMeeting(state, command, events);
    case "saveCheckpoint":
      return applySaveCheckpoint(state, command);
    case "drainNode":
      return applyDrainNode(state, command, events);
    case "deregister":
      return applyDeregister(state, command, events);
    case "placeUnassigned":
      return applyPlaceUnassigned(state, events);
    case "reportLoad":
      return applyReportLoad(state, command);
    case "startMove":
    case "completeMove":
    case "expireMove":
    case "rebalance":
    case "scheduleDrain":
    case "drainDue":
    case "undrain":
      return applyMoveCommand(state, command, events);
    case "setClusterVersion":
      return applySetClusterVersion(state, command);
    default:
      return assertNever(command);
  }
}

function applyRegister(state: CoordinatorState, c: RegisterCommand, events: AssignmentEvent[]): Handled<RegisterResult> {
  const existing = state.nodes.get(c.nodeId);
  // Incarnations and new tenures came with cluster version 2 (formats.ts):
  // before it, members of the previous release apply this log too, and
  // they know neither.
  const versioned = state.clusterVersion >= 2;
  // The process registered now, alive, asks again (a retry whose first
  // answer was lost, or a late duplicate): the same generation, nothing
  // changes. A new generation here would fence the very process that asked.
  const incarnation = versioned ? (c.incarnation ?? "") : "";
  if (existing && incarnation !== "" && existing.incarnation === incarnation && existing.liveness !== "DEAD") {
    return {
      result: { ok: true, type: "register", nodeId: c.nodeId, generation: existing.generation },
      summary: `${c.nodeId} generation ${existing.generation}: already registered by this incarnation`,
    };
  }
  const generation = (existing?.generation ?? state.retiredGenerations.get(c.nodeId) ?? 0) + 1;
  let kept = 0;
  if (existing) {
    // A new incarnation of a known node: it keeps the meetings it still
    // owns (none if it was declared dead), each as a new tenure at a higher
    // epoch with its last checkpoint; the old incarnation is fenced out by
    // generation and epoch. Its flap history stays.
    const oldGeneration = existing.generation;
    existing.address = c.address;
    existing.capacity = c.capacity;
    existing.region = c.region;
    existing.labels = c.labels;
    existing.generation = generation;
    existing.incarnation = incarnation;
    existing.liveness = "ALIVE";
    existing.draining = false;
    if (versioned && !state.config.bugs?.noNewTenure) kept = state.retenure(c.nodeId, oldGeneration, events);
    existing.limits = c.limits ?? NO_LIMITS;
    existing.load = NO_LOAD;
    existing.drainDeadlineMs = 0;
    state.nodeChanged(existing);
  } else {
    const node: NodeRecord = {
      id: c.nodeId,
      address: c.address,
      capacity: c.capacity,
      region: c.region,
      labels: c.labels,
      generation,
      incarnation,
      liveness: "ALIVE",
      draining: false,
      deathsMs: [],
      heldOutUntilMs: 0,
      recent: noRecentPlacements(),
      assigned: 0,
      limits: c.limits ?? NO_LIMITS,
      load: NO_LOAD,
      drainDeadlineMs: 0,
    };
    state.addNode(node);
  }
  const where = `${c.address} capacity ${c.capacity}` + (c.region ? ` region ${c.region}` : "") + (c.labels.length ? ` labels ${labelsToString(c.labels)}` : "");
  const tenures = kept > 0 ? `; kept ${kept} meetings, each at a new epoch` : "";
  return { result: { ok: true, type: "register", nodeId: c.nodeId, generation }, summary: `${c.nodeId} generation ${generation} at ${where}${tenures}` };
}

function applySetLiveness(state: CoordinatorState, c: SetLivenessCommand, events: AssignmentEvent[]): Handled<SetLivenessResult> {
  const subject = `${c.nodeId} generation ${c.generation} → ${c.liveness}`;
  const node = state.nodes.get(c.nodeId);
  if (!node) return refused(subject, failure("NOT_FOUND", `node ${c.nodeId} is not registered`));
  if (node.generation !== c.generation) {
    return refused(subject, failure("FAILED_PRECONDITION", `generation ${c.generation} is stale; node ${c.nodeId} is at generation ${node.generation}`));
  }
  const unchanged = (): Handled<SetLivenessResult> => ({
    result: { ok: true, type: "setLiveness", nodeId: node.id, liveness: node.liveness, changed: false, moved: 0, unassigned: 0, heldOutUntilMs: node.heldOutUntilMs },
    summary: `${subject}: unchanged`,
  });
  if (node.liveness === c.liveness) return unchanged();
  if (node.liveness === "DEAD") {
    return refused(subject, failure("FAILED_PRECONDITION", `node ${c.nodeId} was declared dead; it must register again`));
  }
  const before = node.liveness;
  node.liveness = c.liveness;
  let moved = 0;
  let unassigned = 0;
  if (c.liveness === "DEAD") {
    const record = recordDeath(node, state.clockMs, state.config);
    node.deathsMs = record.deathsMs;
    node.heldOutUntilMs = record.heldOutUntilMs;
  }
  state.nodeChanged(node);
  if (c.liveness === "DEAD") {
    // All its meetings move in this one command (one committed batch).
    ({ moved, notMoved: unassigned } = state.evacuate(node.id, "unassign", events));
  }
  const heldOut = node.heldOutUntilMs > state.clockMs ? `, held out until ${node.heldOutUntilMs}` : "";
  return {
    result: { ok: true, type: "setLiveness", nodeId: node.id, liveness: c.liveness, changed: true, moved, unassigned, heldOutUntilMs: node.heldOutUntilMs },
    summary: `${c.nodeId} generation ${c.generation} ${before} → ${c.liveness}` + (c.liveness === "DEAD" ? `: moved ${moved}, unassigned ${unassigned}${heldOut}` : ""),
  };
}

function applyCreateMeeting(state: CoordinatorState, c: CreateMeetingCommand, index: number, events: AssignmentEvent[]): Handled<CreateMeetingResult> {
  // Meetings already waiting for room go first.
  const placedFirst = state.placeUnassigned(events);
  const waited = placedFirst > 0 ? ` (after placing ${placedFirst} waiting meetings)` : "";
  const existing = state.meetings.get(c.meetingId);
  if (existing) {
    // Create-if-absent: a concurrent create of the same meeting lands here
    // and gets the route the first one chose.
    const lookup = state.getRoute(c.meetingId);
    if (!lookup.ok) return refused(`${c.meetingId}${waited}`, lookup);
    const { route } = lookup;
    return { result: { ok: true, type: "createMeeting", route, created: false }, summary: `${c.meetingId} exists on ${route.nodeId} epoch ${route.epoch}${waited}` };
  }
  const meeting: MeetingRecord = {
    id: c.meetingId,
    owner: "",
    epoch: 0,
    createdIndex: index,
    createdAtMs: state.clockMs,
    region: c.region,
    requiredLabels: c.requiredLabels,
    excludedLabels: c.excludedLabels ?? NO_LABELS,
    move: undefined,
  };
  const target = state.findNodeFor(meeting, undefined, c.preferredNodeId);
  if (target === undefined) return refused(`${c.meetingId}${waited}`, failure("RESOURCE_EXHAUSTED", state.explainNoRoom(meeting)));
  state.addMeeting(meeting);
  state.assign(meeting, target, events);
  return {
    result: { ok: true, type: "createMeeting", route: state.routeOf(meeting), created: true },
    summary: `${c.meetingId} → ${target} epoch ${meeting.epoch} (created)${waited}`,
  };
}

function applyEndMeeting(state: CoordinatorState, c: EndMeetingCommand, events: AssignmentEvent[]): Handled<EndMeetingResult> {
  const meeting = state.meetings.get(c.meetingId);
  if (!meeting) return refused(c.meetingId, failure("NOT_FOUND", `meeting ${c.meetingId} does not exist`));
  const was = meeting.owner === "" ? "unassigned" : `on ${meeting.owner} epoch ${meeting.epoch}`;
  state.removeMeeting(c.meetingId, events);
  return { result: { ok: true, type: "endMeeting", meetingId: c.meetingId }, summary: `${c.meetingId} ended (was ${was})` };
}

/**
 * Fencing, in order: size; the node is registered at this generation and
 * not dead; it owns the meeting at this epoch; the sequence is not below
 * the stored one. Every refusal is FAILED_PRECONDITION but the size one.
 */
function applySaveCheckpoint(state: CoordinatorState, c: SaveCheckpointCommand): Handled<SaveCheckpointResult> {
  const subject = `${c.meetingId} sequence ${c.sequence} from ${c.nodeId} generation ${c.generation} epoch ${c.epoch}`;
  const limit = state.config.maxCheckpointBytes;
  if (c.state.length > limit) {
    return refused(subject, failure("RESOURCE_EXHAUSTED", `state is ${c.state.length} bytes, over the limit of ${limit} bytes`));
  }
  const node = state.nodes.get(c.nodeId);
  if (!node) return refused(subject, failure("FAILED_PRECONDITION", `node ${c.nodeId} is not registered, so it owns no meeting`));
  if (node.generation !== c.generation) {
    return refused(subject, failure("FAILED_PRECONDITION", `generation ${c.generation} is stale; node ${c.nodeId} is at generation ${node.generation}`));
  }
  if (node.liveness === "DEAD") {
    return refused(subject, failure("FAILED_PRECONDITION", `node ${c.nodeId} was declared dead; it must register again`));
  }
  const meeting = state.meetings.get(c.meetingId);
  if (!meeting) return refused(subject, failure("FAILED_PRECONDITION", `meeting ${c.meetingId} does not exist (ended?), so ${c.nodeId} does not own it`));
  if (meeting.owner !== c.nodeId || meeting.epoch !== c.epoch) {
    const now = meeting.owner === "" ? `waits unassigned at epoch ${meeting.epoch}` : `is owned by ${meeting.owner} at epoch ${meeting.epoch}`;
    return refused(subject, failure("FAILED_PRECONDITION", `${c.nodeId} at epoch ${c.epoch} does not own meeting ${c.meetingId}: it ${now}`));
  }
  const stored = state.checkpoints.get(c.meetingId);
  if (stored && c.sequence < stored.sequence && !state.config.bugs?.lowerSequenceAccepted) {
    return refused(subject, failure("FAILED_PRECONDITION", `sequence ${c.sequence} is lower than the stored ${stored.sequence}`));
  }
  if (stored && c.sequence === stored.sequence) {
    // A re-send (e.g. after a timeout) carries the same bytes: idempotent.
    // Different bytes under a stored sequence are not a re-send: acknowledging
    // them without storing would report a save that never happened (an agent
    // that restarted its sequence from an older checkpoint did exactly that).
    if (!sameBytes(c.state, stored.state)) {
      return refused(subject, failure("FAILED_PRECONDITION", `sequence ${c.sequence} is already stored with different state; a new state needs a higher sequence`));
    }
    return { result: { ok: true, type: "saveCheckpoint", sequence: stored.sequence, stored: false }, summary: `${subject}: already stored` };
  }
  state.storeCheckpoint({ meetingId: c.meetingId, nodeId: c.nodeId, epoch: c.epoch, sequence: c.sequence, state: c.state, savedAtMs: state.clockMs });
  return { result: { ok: true, type: "saveCheckpoint", sequence: c.sequence, stored: true }, summary: `${subject} (${c.state.length} bytes)` };
}

function applyDrainNode(state: CoordinatorState, c: DrainNodeCommand, events: AssignmentEvent[]): Handled<DrainNodeResult> {
  const subject = `${c.nodeId}${c.migrate ? " with migrate" : ""}`;
  const node = state.nodes.get(c.nodeId);
  if (!node) return refused(subject, failure("NOT_FOUND", `node ${c.nodeId} is not registered`));
  node.draining = true;
  state.nodeChanged(node);
  // Meetings no other node has room for stay where they are: the node is
  // still serving them, which beats leaving them with no host.
  const { moved } = c.migrate ? state.evacuate(node.id, "stay", events) : { moved: 0 };
  return {
    result: { ok: true, type: "drainNode", moved, stayed: node.assigned },
    summary: `${subject}: draining, moved ${moved}, stayed ${node.assigned}`,
  };
}

function applyDeregister(state: CoordinatorState, c: DeregisterCommand, events: AssignmentEvent[]): Handled<DeregisterResult> {
  const subject = `${c.nodeId} generation ${c.generation}`;
  const node = state.nodes.get(c.nodeId);
  if (!node) return refused(subject, failure("NOT_FOUND", `node ${c.nodeId} is not registered`));
  if (node.generation !== c.generation) {
    return refused(subject, failure("FAILED_PRECONDITION", `generation ${c.generation} is stale; node ${c.nodeId} is at generation ${node.generation}`));
  }
  node.draining = true;
  state.nodeChanged(node);
  // The node is leaving: a meeting no other node has room for waits
  // unassigned (with its checkpoint) rather than stay on a host that goes.
  const { moved, notMoved } = state.evacuate(node.id, "unassign", events);
  state.forgetNode(node.id);
  return { result: { ok: true, type: "deregister", moved, unassigned: notMoved }, summary: `${subject} left: moved ${moved}, unassigned ${notMoved}` };
}

function applyPlaceUnassigned(state: CoordinatorState, events: AssignmentEvent[]): Handled<PlaceUnassignedResult> {
  const placed = state.placeUnassigned(events);
  const stillUnassigned = state.unassignedCount;
  return { result: { ok: true, type: "placeUnassigned", placed, stillUnassigned }, summary: `placed ${placed}, still unassigned ${stillUnassigned}` };
}

function refused(subject: string, f: CommandFailure): { result: CommandFailure; summary: string } {
  return { result: f, summary: subject };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}
