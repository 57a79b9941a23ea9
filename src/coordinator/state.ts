/**
 * The replicated coordinator state: nodes, meetings, checkpoints, the
 * replicated clock and the audit log, with the queries the services read
 * and the few primitives apply mutates it through.
 *
 * Who calls what:
 *   - apply-command.ts mutates the state, only through the primitives
 *     below (assign, revoke, evacuate, ...), which keep the derived
 *     indexes and counters in step and produce AssignmentEvents.
 *   - state-snapshot.ts reads and rebuilds the maps.
 *   - the services see only `CoordinatorQueries`.
 *
 * Determinism: Map iteration order is insertion order, which a snapshot
 * preserves, but no decision depends on it anyway: placement is a total
 * order, and every loop that decides (evacuating a node, placing
 * unassigned meetings) walks meeting ids sorted.
 *
 * Invariants (checked by `checkInvariants`):
 *   - an assigned meeting's owner is a known node that is not DEAD;
 *   - node.assigned equals the number of meetings it owns;
 *   - a checkpoint exists only for a known meeting;
 *   - meeting epochs are >= 1;
 *   - a pending move is only on an assigned meeting, and indexed;
 *   - the placement index files each node by its current inputs.
 */
import { AuditLog } from "./audit-log.js";
import { BrokenInvariantError, type CommandFailure, failure } from "./errors.js";
import { type CoordinatorEvent, EventLog } from "./event-log.js";
import { compareStrings } from "./labels.js";
import type {
  Assignment,
  AssignmentEvent,
  AuditEntry,
  CheckpointRecord,
  CheckpointView,
  MeetingRecord,
  NodeRecord,
  NodeStatus,
  NodeView,
  PendingMove,
  Route,
} from "./model.js";
import type { PlannedMove } from "./move-commands.js";
import { NO_LIMITS } from "./node-load.js";
import { type PlacementRequest, explainNoPlacement, findPlacement, ineligibility } from "./placement.js";
import { PlacementIndex, SCAN } from "./placement-index.js";
import { PlacementRanking } from "./placement-ranking.js";
import { notePlacement } from "./recent-placements.js";
import { type RebalanceOptions, planRebalance } from "./rebalance.js";
import type { CoordinatorStateConfig } from "./state-config.js";

/** Meetings placed in a row by a scan each before a ranking takes over (building one costs a few scans). */
const IN_ROW_SCANS = 8;

export type RouteLookup = { readonly ok: true; readonly route: Route } | CommandFailure;
export type SessionCheck = { readonly ok: true; readonly node: NodeView } | CommandFailure;

/** A hand-over under way, for the leader's move watchdog. */
export interface PendingMoveView extends PendingMove {
  readonly meetingId: string;
  readonly ownerId: string;
  readonly epoch: number;
}

/** What the services read. Every answer is as of the last applied command. */
export interface CoordinatorQueries {
  /** NOT_FOUND unknown; RESOURCE_EXHAUSTED known but waiting for a node with room. */
  getRoute(meetingId: string): RouteLookup;
  getNode(nodeId: string): NodeView | undefined;
  /** Sorted by node id. */
  listNodes(): NodeView[];
  /** Sorted by meeting id; all meetings (unassigned ones with nodeId "") or one node's. */
  listMeetings(nodeId?: string): Route[];
  /** listMeetings, only the first `limit` after meeting id `after` (all when empty); `more` when some follow. */
  listMeetingsPage(nodeId: string, after: string, limit: number): { routes: Route[]; more: boolean };
  getCheckpoint(meetingId: string): CheckpointView | undefined;
  /** What a node must host, sorted by meeting id: the start of its watch stream. */
  meetingsOf(nodeId: string): Assignment[];
  /**
   * Heartbeat and WatchAssignments' check: NOT_FOUND unknown node,
   * FAILED_PRECONDITION stale generation or declared dead.
   */
  checkSession(nodeId: string, generation: number): SessionCheck;
  /** The newest audit entries, oldest first. */
  auditLog(limit?: number): AuditEntry[];
  /** Kept events after `index`, oldest first; `limit` events or a few more (an index is never cut). */
  eventsSince(index: number, limit?: number): CoordinatorEvent[];
  /** Every event after this index is kept: a watcher at or past it can resume. */
  readonly eventFloor: number;
  /** Hand-overs under way, by meeting id. */
  pendingMoves(): PendingMoveView[];
  /** Draining nodes past their drain deadline that still own a meeting another node could take now. */
  dueDrains(nowMs: number): string[];
  /** The earliest drain deadline after `nowMs` of a draining node that owns meetings (undefined: none). */
  nextDrainDeadline(nowMs: number): number | undefined;
  /** The hand-overs a rebalance command would start now (rebalance.ts). */
  planRebalance(options: RebalanceOptions): PlannedMove[];
  /** How many of each there are, without listing them (metrics). */
  counts(): StateCounts;
  /** The replicated clock and the last applied index. */
  readonly clockMs: number;
  readonly appliedIndex: number;
  /** Which formats the group writes (formats.ts); raised by setClusterVersion, never lowered. */
  readonly clusterVersion: number;
  readonly config: CoordinatorStateConfig;
}

export interface StateCounts {
  readonly nodesByStatus: Readonly<Record<NodeStatus, number>>;
  readonly meetings: number;
  readonly unassigned: number;
  readonly checkpoints: number;
}

export function nodeStatus(node: Pick<NodeRecord, "liveness" | "draining">): NodeStatus {
  if (node.liveness !== "ALIVE") return node.liveness;
  return node.draining ? "DRAINING" : "ALIVE";
}

export class CoordinatorState implements CoordinatorQueries {
  /** The largest `nowMs` of any applied command: never goes backwards. */
  clockMs = 0;
  appliedIndex = 0;
  clusterVersion = 1;
  readonly nodes = new Map<string, NodeRecord>();
  /** Last generation of each node forgotten by Deregister, so the next Register still grows it. */
  readonly retiredGenerations = new Map<string, number>();
  readonly meetings = new Map<string, MeetingRecord>();
  readonly checkpoints = new Map<string, CheckpointRecord>();
  readonly audit: AuditLog;
  readonly events: EventLog;
  /** Derived: meeting ids by owner. Rebuilt on restore, never serialized. */
  private readonly owned = new Map<string, Set<string>>();
  /** Derived: meetings with no owner, waiting for room. */
  private readonly unassigned = new Set<string>();
  /** Derived: meetings with a hand-over under way. */
  private readonly moving = new Set<string>();
  /**
   * Told of a meeting just before its owner, epoch or move changes: a
   * snapshot encoded in steps keeps the meeting as it was when the
   * encoding began (state-snapshot.ts), without copying every meeting up
   * front. Meeting records change nowhere else.
   */
  private readonly meetingWatchers = new Set<(meeting: MeetingRecord) => void>();
  /** Derived: the nodes that could take a meeting, in placement's order (placement-index.ts). */
  private readonly placementIndex: PlacementIndex;

  /** `eventFloor`: the index before the first event this state may not know (a state restored from an older snapshot format). */
  constructor(
    readonly config: CoordinatorStateConfig,
    eventFloor = 0,
  ) {
    this.audit = new AuditLog(config.auditLogSize);
    this.events = new EventLog(config.eventLogSize, eventFloor);
    this.placementIndex = new PlacementIndex(config.burstWindowMs, config.placementWeights);
  }

  // ---- queries -----------------------------------------------------------

  getRoute(meetingId: string): RouteLookup {
    const meeting = this.meetings.get(meetingId);
    if (!meeting) return failure("NOT_FOUND", `meeting ${JSON.stringify(meetingId)} is not assigned`);
    if (meeting.owner === "") {
      return failure(
        "RESOURCE_EXHAUSTED",
        `meeting ${JSON.stringify(meetingId)} is waiting for a live node with room (its host is gone)`,
      );
    }
    return { ok: true, route: this.routeOf(meeting) };
  }

  getNode(nodeId: string): NodeView | undefined {
    const node = this.nodes.get(nodeId);
    return node ? viewOf(node) : undefined;
  }

  listNodes(): NodeView[] {
    return [...this.nodes.values()].sort((a, b) => compareStrings(a.id, b.id)).map(viewOf);
  }

  listMeetings(nodeId = ""): Route[] {
    const ids = nodeId === "" ? [...this.meetings.keys()] : [...(this.owned.get(nodeId) ?? [])];
    return ids.sort(compareStrings).map((id) => this.routeOf(this.meetingOrThrow(id)));
  }

  listMeetingsPage(nodeId: string, after: string, limit: number): { routes: Route[]; more: boolean } {
    const ids = (nodeId === "" ? [...this.meetings.keys()] : [...(this.owned.get(nodeId) ?? [])]).sort(compareStrings);
    // The first id after `after`, by binary search.
    let lo = 0;
    let hi = ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareStrings(ids[mid]!, after) <= 0) lo = mid + 1;
      else hi = mid;
    }
    const page = ids.slice(lo, lo + limit);
    return { routes: page.map((id) => this.routeOf(this.meetingOrThrow(id))), more: lo + limit < ids.length };
  }

  getCheckpoint(meetingId: string): CheckpointView | undefined {
    return this.checkpoints.get(meetingId);
  }

  meetingsOf(nodeId: string): Assignment[] {
    return this.ownedSorted(nodeId).map((id) => this.assignmentOf(this.meetingOrThrow(id)));
  }

  checkSession(nodeId: string, generation: number): SessionCheck {
    const node = this.nodes.get(nodeId);
    if (!node) return failure("NOT_FOUND", `node ${JSON.stringify(nodeId)} is not registered`);
    if (node.generation !== generation) {
      return failure(
        "FAILED_PRECONDITION",
        `node ${nodeId} generation ${generation} is stale (current ${node.generation}); register again`,
      );
    }
    if (node.liveness === "DEAD") {
      return failure("FAILED_PRECONDITION", `node ${nodeId} generation ${generation} was declared dead; register again`);
    }
    return { ok: true, node: viewOf(node) };
  }

  auditLog(limit?: number): AuditEntry[] {
    return this.audit.list(limit);
  }

  eventsSince(index: number, limit?: number): CoordinatorEvent[] {
    return this.events.since(index, limit);
  }

  get eventFloor(): number {
    return this.events.floor;
  }

  pendingMoves(): PendingMoveView[] {
    return [...this.moving].sort(compareStrings).map((id) => {
      const m = this.meetingOrThrow(id);
      return { meetingId: id, ownerId: m.owner, epoch: m.epoch, ...m.move! };
    });
  }

  dueDrains(nowMs: number): string[] {
    const due: string[] = [];
    for (const node of this.nodes.values()) {
      if (!node.draining || node.drainDeadlineMs === 0 || node.drainDeadlineMs > nowMs || node.assigned === 0) continue;
      const movable = this.ownedSorted(node.id).some((id) => {
        const meeting = this.meetingOrThrow(id);
        return meeting.move === undefined && this.findNodeFor(meeting, node.id) !== undefined;
      });
      if (movable) due.push(node.id);
    }
    return due.sort(compareStrings);
  }

  nextDrainDeadline(nowMs: number): number | undefined {
    let next: number | undefined;
    for (const node of this.nodes.values()) {
      if (!node.draining || node.drainDeadlineMs <= nowMs || node.assigned === 0) continue;
      if (next === undefined || node.drainDeadlineMs < next) next = node.drainDeadlineMs;
    }
    return next;
  }

  planRebalance(options: RebalanceOptions): PlannedMove[] {
    return planRebalance(this, options);
  }

  counts(): StateCounts {
    const nodesByStatus: Record<NodeStatus, number> = { ALIVE: 0, SUSPECT: 0, DEAD: 0, DRAINING: 0 };
    for (const node of this.nodes.values()) nodesByStatus[nodeStatus(node)]++;
    return { nodesByStatus, meetings: this.meetings.size, unassigned: this.unassigned.size, checkpoints: this.checkpoints.size };
  }

  /** Unassigned meetings, sorted: for tests and operators. */
  unassignedMeetings(): string[] {
    return [...this.unassigned].sort(compareStrings);
  }

  // ---- primitives for apply ----------------------------------------------

  /** Moves the replicated clock to `nowMs` unless it is already later. */
  advanceClock(nowMs: number): void {
    if (nowMs > this.clockMs) this.clockMs = nowMs;
  }

  /** `filed` false: the caller files every node at once afterwards (rebuildDerived, after a restore) rather than one splice each. */
  addNode(node: NodeRecord, filed = true): void {
    if (this.nodes.has(node.id)) throw new BrokenInvariantError(`node ${node.id} is already registered`);
    this.nodes.set(node.id, node);
    this.owned.set(node.id, new Set());
    this.retiredGenerations.delete(node.id);
    if (filed) this.nodeChanged(node);
  }

  /**
   * Every change to a node's placement inputs (liveness, draining,
   * capacity, region, labels, limits, load, hold-out) made outside these
   * primitives must be reported here before the next placement: placement
   * reads its index, not the nodes.
   */
  nodeChanged(node: NodeRecord): void {
    this.placementIndex.refile(node, this.clockMs);
  }

  /** Forgets a node that owns nothing; its generation is remembered. */
  forgetNode(nodeId: string): void {
    const node = this.nodeOrThrow(nodeId);
    if (node.assigned !== 0) throw new BrokenInvariantError(`node ${nodeId} still owns ${node.assigned} meetings`);
    this.nodes.delete(nodeId);
    this.owned.delete(nodeId);
    this.placementIndex.remove(nodeId);
    this.retiredGenerations.set(nodeId, node.generation);
  }

  /** Calls `before` with each meeting about to change, until the returned function is called. */
  watchMeetingChanges(before: (meeting: MeetingRecord) => void): () => void {
    this.meetingWatchers.add(before);
    return () => void this.meetingWatchers.delete(before);
  }

  /** The one way to write a meeting record: the watchers hear of it first. */
  private writable(meeting: MeetingRecord): { -readonly [K in keyof MeetingRecord]: MeetingRecord[K] } {
    for (const before of this.meetingWatchers) before(meeting);
    return meeting;
  }

  /** Adds a meeting with no owner yet (epoch 0): `assign` gives it epoch 1. */
  addMeeting(meeting: MeetingRecord): void {
    if (this.meetings.has(meeting.id)) throw new BrokenInvariantError(`meeting ${meeting.id} already exists`);
    if (meeting.owner !== "" || meeting.epoch !== 0) throw new BrokenInvariantError(`new meeting ${meeting.id} must start unowned at epoch 0`);
    this.meetings.set(meeting.id, meeting);
    this.unassigned.add(meeting.id);
  }

  /** Ends a meeting: REVOKED to its owner; its checkpoint goes too. */
  removeMeeting(meetingId: string, events: AssignmentEvent[]): void {
    const meeting = this.meetingOrThrow(meetingId);
    if (meeting.owner !== "") this.revoke(meeting, events);
    this.clearMove(meeting);
    this.unassigned.delete(meetingId);
    this.meetings.delete(meetingId);
    this.checkpoints.delete(meetingId);
  }

  storeCheckpoint(checkpoint: CheckpointRecord): void {
    this.meetingOrThrow(checkpoint.meetingId);
    this.checkpoints.set(checkpoint.meetingId, checkpoint);
  }

  /** The node placement would choose for this meeting now, if any: from the index, as a scan of every node would. */
  findNodeFor(meeting: MeetingRecord, excludeNodeId?: string, preferredNodeId?: string): string | undefined {
    const bugs = this.config.bugs;
    const req = this.placementRequest(meeting, excludeNodeId, preferredNodeId);
    if (bugs?.placeOnDrainingOrSuspect) {
      return findPlacement(
        [...this.nodes.values()].map((n) => ({ ...n, draining: false, liveness: n.liveness === "SUSPECT" ? ("ALIVE" as const) : n.liveness })),
        req,
      );
    }
    if (bugs?.placeOverLimit) return findPlacement([...this.nodes.values()].map((n) => ({ ...n, limits: NO_LIMITS })), req);
    return this.checkedAgainstScan(meeting, req, this.placeFromIndex(req));
  }

  /** `chosen`, after comparing it with a scan of every node when the config asks (tests). */
  private checkedAgainstScan(meeting: MeetingRecord, req: PlacementRequest, chosen: string | undefined): string | undefined {
    if (this.config.checkPlacementIndex) {
      const scanned = findPlacement(this.nodes.values(), req);
      if (scanned !== chosen) throw new BrokenInvariantError(`placement index chose ${String(chosen)} for meeting ${meeting.id}, a scan ${String(scanned)}`);
    }
    return chosen;
  }

  private placeFromIndex(req: PlacementRequest): string | undefined {
    // Rule 2: an eligible preferred node, held out or not.
    const preferred = req.preferredNodeId === undefined ? undefined : this.nodes.get(req.preferredNodeId);
    if (preferred && ineligibility(preferred, req) === "") return preferred.id;
    const best = this.placementIndex.best(req);
    return best === SCAN ? findPlacement(this.nodes.values(), req) : best;
  }

  /** Throws BrokenInvariantError if the placement index disagrees with the nodes (tests run it after every command). O(nodes). */
  checkPlacementIndex(): void {
    this.placementIndex.check(this.nodes.values(), this.clockMs);
  }

  /** ResourceExhausted's message for this meeting: why no node fits. */
  explainNoRoom(meeting: MeetingRecord, excludeNodeId?: string): string {
    return explainNoPlacement(this.nodes.values(), this.placementRequest(meeting, excludeNodeId));
  }

  /** Gives an unowned meeting to `nodeId`: epoch + 1, ASSIGNED with the checkpoint. */
  assign(meeting: MeetingRecord, nodeId: string, events: AssignmentEvent[]): void {
    const node = this.nodeOrThrow(nodeId);
    if (meeting.owner !== "") throw new BrokenInvariantError(`meeting ${meeting.id} is owned by ${meeting.owner}`);
    if (node.liveness === "DEAD") throw new BrokenInvariantError(`meeting ${meeting.id} assigned to dead node ${nodeId}`);
    const written = this.writable(meeting);
    written.owner = nodeId;
    if (!(this.config.bugs?.moveWithoutEpochBump && meeting.epoch > 0)) written.epoch++;
    node.assigned++;
    this.ownedSetOf(nodeId).add(meeting.id);
    this.unassigned.delete(meeting.id);
    notePlacement(node.recent, this.clockMs, this.config.burstWindowMs);
    this.nodeChanged(node);
    events.push({ type: "ASSIGNED", nodeId, generation: node.generation, ...this.assignmentOf(meeting) });
  }

  /** Takes a meeting from its owner (REVOKED, same epoch); it waits unassigned. A pending move ends with it. */
  revoke(meeting: MeetingRecord, events: AssignmentEvent[]): void {
    const node = this.nodeOrThrow(meeting.owner);
    this.clearMove(meeting);
    events.push({ type: "REVOKED", nodeId: node.id, generation: node.generation, meetingId: meeting.id, epoch: meeting.epoch });
    this.ownedSetOf(node.id).delete(meeting.id);
    node.assigned--;
    this.nodeChanged(node);
    this.writable(meeting).owner = "";
    this.unassigned.add(meeting.id);
  }

  /**
   * A node registered again under a new generation while it still owns
   * meetings (it restarted before it was declared dead): each of them
   * starts a new tenure on the new incarnation, in meeting id order: the
   * old generation is told REVOKED, the new one ASSIGNED at epoch + 1 with
   * the last checkpoint. So one epoch always means one (node, generation),
   * and fencing and every checker can rely on the epoch alone.
   */
  retenure(nodeId: string, oldGeneration: number, events: AssignmentEvent[]): number {
    const node = this.nodeOrThrow(nodeId);
    if (node.generation === oldGeneration) throw new BrokenInvariantError(`node ${nodeId} kept generation ${oldGeneration}`);
    const ids = this.ownedSorted(nodeId);
    for (const meetingId of ids) {
      const meeting = this.meetingOrThrow(meetingId);
      events.push({ type: "REVOKED", nodeId, generation: oldGeneration, meetingId, epoch: meeting.epoch });
      this.writable(meeting).epoch++;
      events.push({ type: "ASSIGNED", nodeId, generation: node.generation, ...this.assignmentOf(meeting) });
    }
    return ids.length;
  }

  /**
   * Moves every meeting off `nodeId`, in meeting id order, each to the
   * placement choice excluding that node (epoch + 1, with its checkpoint).
   * A meeting no node has room for is left unassigned ("unassign") or left
   * on the node ("stay": a drain must not take a meeting from a live host
   * to nowhere).
   */
  evacuate(nodeId: string, unplaceable: "unassign" | "stay", events: AssignmentEvent[]): { moved: number; notMoved: number } {
    let moved = 0;
    let notMoved = 0;
    const inRow = this.inRowPlacement(nodeId);
    for (const meetingId of this.ownedSorted(nodeId)) {
      const meeting = this.meetingOrThrow(meetingId);
      const target = inRow.find(meeting);
      if (target === undefined) {
        notMoved++;
        if (unplaceable === "unassign") this.revoke(meeting, events);
        continue;
      }
      this.revoke(meeting, events);
      this.assign(meeting, target, events);
      inRow.placed(target);
      moved++;
    }
    return { moved, notMoved };
  }

  /**
   * Places unassigned meetings that fit now, in meeting id order. Cheap
   * when there are none, or when no node could take any meeting at all.
   */
  placeUnassigned(events: AssignmentEvent[]): number {
    if (this.unassigned.size === 0 || !this.anyNodeHasRoom()) return 0;
    let placed = 0;
    const inRow = this.inRowPlacement();
    for (const meetingId of [...this.unassigned].sort(compareStrings)) {
      const meeting = this.meetingOrThrow(meetingId);
      const target = inRow.find(meeting);
      if (target === undefined) continue;
      this.assign(meeting, target, events);
      inRow.placed(target);
      placed++;
    }
    return placed;
  }

  /**
   * findNodeFor for meetings placed one after another, each assigned (and
   * `placed` told) before the next is asked. Most requests the placement
   * index answers without a scan, each cheaply. For those it cannot, past
   * the first few, a ranking of the nodes (placement-ranking.ts) replaces a
   * scan of every node per meeting: the same choices, so that a death of
   * many servers at once does not hold every member in one apply for
   * seconds. A ranking is built only for those: building one is a sort of
   * every node (about 2 ms at 10,000), which a dead server's ten meetings
   * paid at every death while the index could answer each of them.
   */
  private inRowPlacement(excludeNodeId?: string): { find(meeting: MeetingRecord): string | undefined; placed(nodeId: string): void } {
    const bugs = this.config.bugs;
    const scanOnly = bugs?.placeOnDrainingOrSuspect === true || bugs?.placeOverLimit === true;
    let asked = 0;
    let ranking: PlacementRanking | undefined;
    let rankedFor = "";
    const unindexed = new Set<string>();
    return {
      find: (meeting) => {
        if (scanOnly || asked++ < IN_ROW_SCANS) return this.findNodeFor(meeting, excludeNodeId);
        const key = JSON.stringify([meeting.region, meeting.requiredLabels, meeting.excludedLabels ?? null]);
        const req = this.placementRequest(meeting, excludeNodeId);
        // Placing only takes room, so a request the index could not answer it will not answer later in the row.
        if (!unindexed.has(key)) {
          const best = this.placementIndex.best(req);
          if (best !== SCAN) return this.checkedAgainstScan(meeting, req, best);
          unindexed.add(key);
        }
        if (ranking === undefined || key !== rankedFor) {
          ranking = new PlacementRanking(this.nodes.values(), req);
          rankedFor = key;
        }
        return ranking.best();
      },
      placed: (nodeId) => ranking?.update(this.nodeOrThrow(nodeId)),
    };
  }

  get unassignedCount(): number {
    return this.unassigned.size;
  }

  /** Records a hand-over of an assigned meeting and tells its owner (HANDOVER). */
  startMove(meeting: MeetingRecord, move: PendingMove, events: AssignmentEvent[]): void {
    const node = this.nodeOrThrow(meeting.owner);
    this.writable(meeting).move = move;
    this.moving.add(meeting.id);
    events.push({ type: "HANDOVER", nodeId: node.id, generation: node.generation, meetingId: meeting.id, epoch: meeting.epoch });
  }

  clearMove(meeting: MeetingRecord): void {
    if (meeting.move !== undefined) {
      this.writable(meeting).move = undefined;
    }
    this.moving.delete(meeting.id);
  }

  nodeOrThrow(nodeId: string): NodeRecord {
    const node = this.nodes.get(nodeId);
    if (!node) throw new BrokenInvariantError(`node ${JSON.stringify(nodeId)} is not registered`);
    return node;
  }

  meetingOrThrow(meetingId: string): MeetingRecord {
    const meeting = this.meetings.get(meetingId);
    if (!meeting) throw new BrokenInvariantError(`meeting ${JSON.stringify(meetingId)} does not exist`);
    return meeting;
  }

  routeOf(meeting: MeetingRecord): Route {
    const address = meeting.owner === "" ? "" : this.nodeOrThrow(meeting.owner).address;
    return { meetingId: meeting.id, nodeId: meeting.owner, address, epoch: meeting.epoch };
  }

  // ---- restore and checks ------------------------------------------------

  /**
   * Recomputes every derived index and counter from the records (after a
   * restore), checking as it files each record the invariants that the
   * records alone can break. Those of the indexes hold by construction
   * here, so a restore needs no second pass over the state
   * (`checkInvariants`, which tests run after every command, checks both).
   */
  rebuildDerived(): void {
    this.owned.clear();
    this.unassigned.clear();
    this.moving.clear();
    for (const node of this.nodes.values()) {
      node.assigned = 0;
      this.owned.set(node.id, new Set());
    }
    for (const meeting of this.meetings.values()) {
      if (meeting.epoch < 1) throw new BrokenInvariantError(`meeting ${meeting.id} has epoch ${meeting.epoch}`);
      if (meeting.move) this.moving.add(meeting.id);
      if (meeting.owner === "") {
        if (meeting.move) throw new BrokenInvariantError(`unowned meeting ${meeting.id} has a move under way`);
        this.unassigned.add(meeting.id);
        continue;
      }
      const owner = this.nodeOrThrow(meeting.owner);
      if (owner.liveness === "DEAD") throw new BrokenInvariantError(`meeting ${meeting.id} is owned by dead node ${owner.id}`);
      owner.assigned++;
      this.ownedSetOf(owner.id).add(meeting.id);
    }
    for (const id of this.checkpoints.keys()) {
      if (!this.meetings.has(id)) throw new BrokenInvariantError(`checkpoint of unknown meeting ${id}`);
    }
    this.placementIndex.rebuild(this.nodes.values(), this.clockMs);
  }

  /** Throws BrokenInvariantError at the first invariant that does not hold. O(state). */
  checkInvariants(): void {
    const counted = new Map<string, number>();
    for (const meeting of this.meetings.values()) {
      if (meeting.epoch < 1) throw new BrokenInvariantError(`meeting ${meeting.id} has epoch ${meeting.epoch}`);
      if ((meeting.move !== undefined) !== this.moving.has(meeting.id)) throw new BrokenInvariantError(`meeting ${meeting.id}'s move is not indexed`);
      if (meeting.move && meeting.owner === "") throw new BrokenInvariantError(`unowned meeting ${meeting.id} has a move under way`);
      if (meeting.owner === "") {
        if (!this.unassigned.has(meeting.id)) throw new BrokenInvariantError(`unowned meeting ${meeting.id} is not indexed`);
        continue;
      }
      const owner = this.nodeOrThrow(meeting.owner);
      if (owner.liveness === "DEAD") throw new BrokenInvariantError(`meeting ${meeting.id} is owned by dead node ${owner.id}`);
      if (!this.owned.get(owner.id)?.has(meeting.id)) throw new BrokenInvariantError(`meeting ${meeting.id} is not indexed under ${owner.id}`);
      counted.set(owner.id, (counted.get(owner.id) ?? 0) + 1);
    }
    for (const node of this.nodes.values()) {
      const owns = counted.get(node.id) ?? 0;
      if (node.assigned !== owns || this.ownedSetOf(node.id).size !== owns) {
        throw new BrokenInvariantError(`node ${node.id} counts ${node.assigned} meetings but owns ${owns}`);
      }
    }
    for (const id of this.unassigned) {
      if (this.meetings.get(id)?.owner !== "") throw new BrokenInvariantError(`meeting ${id} is indexed as unassigned but is not`);
    }
    for (const id of this.checkpoints.keys()) {
      if (!this.meetings.has(id)) throw new BrokenInvariantError(`checkpoint of unknown meeting ${id}`);
    }
    this.checkPlacementIndex();
  }

  // ---- helpers -------------------------------------------------------------

  placementRequest(meeting: MeetingRecord, excludeNodeId?: string, preferredNodeId?: string): PlacementRequest {
    return {
      region: meeting.region,
      requiredLabels: meeting.requiredLabels,
      excludedLabels: meeting.excludedLabels,
      nowMs: this.clockMs,
      burstWindowMs: this.config.burstWindowMs,
      weights: this.config.placementWeights,
      ...(excludeNodeId === undefined ? {} : { excludeNodeId }),
      ...(preferredNodeId ? { preferredNodeId } : {}),
    };
  }

  private anyNodeHasRoom(): boolean {
    for (const node of this.nodes.values()) {
      // Held-out nodes count: placement takes them as a last resort.
      if (node.liveness === "ALIVE" && !node.draining && node.assigned < node.capacity) {
        return true;
      }
    }
    return false;
  }

  private assignmentOf(meeting: MeetingRecord): Assignment {
    const checkpoint = this.checkpoints.get(meeting.id);
    const base = checkpoint ? { meetingId: meeting.id, epoch: meeting.epoch, checkpoint } : { meetingId: meeting.id, epoch: meeting.epoch };
    return meeting.move ? { ...base, handingOver: true } : base;
  }

  private ownedSetOf(nodeId: string): Set<string> {
    const set = this.owned.get(nodeId);
    if (!set) throw new BrokenInvariantError(`node ${JSON.stringify(nodeId)} has no meeting index`);
    return set;
  }

  /** The meetings a node owns, sorted by id. */
  ownedSorted(nodeId: string): string[] {
    return [...(this.owned.get(nodeId) ?? [])].sort(compareStrings);
  }
}

function viewOf(node: NodeRecord): NodeView {
  return {
    nodeId: node.id,
    address: node.address,
    capacity: node.capacity,
    region: node.region,
    labels: node.labels,
    state: nodeStatus(node),
    liveness: node.liveness,
    draining: node.draining,
    meetings: node.assigned,
    generation: node.generation,
    heldOutUntilMs: node.heldOutUntilMs,
    limits: node.limits,
    load: node.load,
    drainDeadlineMs: node.drainDeadlineMs,
  };
}
