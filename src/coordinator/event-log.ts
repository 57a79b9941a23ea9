/**
 * The events applications watch (Coordinator.WatchEvents): every change of
 * the replicated state an application cares about, with the Raft index of
 * the command that made it as its id. A command may make several (a dead
 * node and each of its meetings' moves): they share the index and are
 * numbered by `position` from 0, so "index:position" is unique and orders
 * them.
 *
 * The newest events are part of the replicated state (and of snapshots),
 * so every member holds the same ones and a watcher resumes on any member
 * exactly where it stopped. The log keeps about `capacity` events, dropping
 * the oldest index whole; `floor` is the newest index dropped: a watcher
 * that has seen everything up to an index at or above the floor can resume.
 */
import { BrokenInvariantError } from "./errors.js";
import type { EventType, MoveReason } from "../wire/event-types.js";

export { EVENT_TYPES, type EventType } from "../wire/event-types.js";

/**
 * One event. Flat, with empty defaults, so every event has the same shape
 * (in snapshots and on the wire); which fields mean something depends on
 * the type (proto/convene.proto, message Event).
 */
export interface CoordinatorEvent {
  readonly index: number;
  readonly position: number;
  /** The replicated clock of the command. */
  readonly atMs: number;
  readonly type: EventType;
  readonly meetingId: string;
  /** The node the event is about; for meeting events its host afterwards ("" when it waits unassigned). */
  readonly nodeId: string;
  /** Moves: from and to ("" for none: a meeting waiting unassigned). */
  readonly fromNodeId: string;
  readonly toNodeId: string;
  /** Meeting events: the epoch afterwards. */
  readonly epoch: number;
  /** MEETING_MOVED and MEETING_MOVE_STARTED. */
  readonly reason: MoveReason | "";
  /** MEETING_MOVED: the sequence of the checkpoint the new owner got (0: none). */
  readonly checkpointSequence: number;
  /** MEETING_MOVED: the checkpoint is the old owner's final one, taken after its last write. */
  readonly finalCheckpoint: boolean;
  /** Node events: its generation. */
  readonly generation: number;
  /** NODE_DRAINING: when its meetings are handed over (0: not planned; a drain without deadline). */
  readonly drainDeadlineMs: number;
}

/** An event before it gets its index, position and time (what apply derives). */
export type EventDraft = Partial<Omit<CoordinatorEvent, "index" | "position" | "atMs" | "type">> & { readonly type: EventType };

export function completeEvent(draft: EventDraft, index: number, position: number, atMs: number): CoordinatorEvent {
  return {
    index,
    position,
    atMs,
    type: draft.type,
    meetingId: draft.meetingId ?? "",
    nodeId: draft.nodeId ?? "",
    fromNodeId: draft.fromNodeId ?? "",
    toNodeId: draft.toNodeId ?? "",
    epoch: draft.epoch ?? 0,
    reason: draft.reason ?? "",
    checkpointSequence: draft.checkpointSequence ?? 0,
    finalCheckpoint: draft.finalCheckpoint ?? false,
    generation: draft.generation ?? 0,
    drainDeadlineMs: draft.drainDeadlineMs ?? 0,
  };
}

export class EventLog {
  /** Kept events are `events[head..]`, in (index, position) order. */
  private events: (CoordinatorEvent | undefined)[] = [];
  private head = 0;
  private kept = 0;
  private floorIndex: number;

  constructor(
    readonly capacity: number,
    floor = 0,
  ) {
    this.floorIndex = floor;
  }

  /** Every event with an index above this is kept. */
  get floor(): number {
    return this.floorIndex;
  }

  get size(): number {
    return this.kept;
  }

  /** The index of the oldest event kept, or 0 when none is. */
  get oldestIndex(): number {
    return this.kept === 0 ? 0 : this.events[this.head]!.index;
  }

  /** The index of the newest event kept, or 0 when none is. */
  get newestIndex(): number {
    return this.kept === 0 ? 0 : this.events[this.events.length - 1]!.index;
  }

  /** Appends one command's events (all of `index`, positions 0..n-1), then drops the oldest indexes past the capacity. */
  append(events: readonly CoordinatorEvent[]): void {
    if (events.length === 0) return;
    const index = events[0]!.index;
    if (index <= this.newestIndex || index <= this.floorIndex) {
      throw new BrokenInvariantError(`events of index ${index} appended after index ${Math.max(this.newestIndex, this.floorIndex)}`);
    }
    events.forEach((e, i) => {
      if (e.index !== index || e.position !== i) throw new BrokenInvariantError(`event ${e.index}:${e.position} appended as ${index}:${i}`);
      this.events.push(e);
    });
    this.kept += events.length;
    this.trim();
  }

  /** Kept events with an index above `index`, oldest first; at most `limit` indexes' worth are cut only between indexes. */
  since(index: number, limit = Infinity): CoordinatorEvent[] {
    let lo = this.head;
    let hi = this.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.events[mid]!.index > index) hi = mid;
      else lo = mid + 1;
    }
    if (this.events.length - lo <= limit) return this.events.slice(lo) as CoordinatorEvent[];
    let end = lo + limit;
    // Never cut an index in two.
    while (end < this.events.length && this.events[end]!.index === this.events[end - 1]!.index) end++;
    return this.events.slice(lo, end) as CoordinatorEvent[];
  }

  /** Every kept event, oldest first (for snapshots). */
  list(): CoordinatorEvent[] {
    return this.events.slice(this.head) as CoordinatorEvent[];
  }

  /** Appends a snapshot's events (in order, grouped by index) to an empty log. */
  restore(events: readonly CoordinatorEvent[]): void {
    if (this.kept !== 0) throw new BrokenInvariantError("events restored into a log that is not empty");
    for (let i = 0; i < events.length; ) {
      let end = i + 1;
      while (end < events.length && events[end]!.index === events[i]!.index) end++;
      this.append(events.slice(i, end));
      i = end;
    }
  }

  private trim(): void {
    // The newest index stays whole even when it alone is over the capacity.
    while (this.kept > this.capacity && this.events[this.head]!.index !== this.newestIndex) {
      const dropping = this.events[this.head]!.index;
      while (this.events[this.head]?.index === dropping) {
        this.events[this.head] = undefined;
        this.head++;
        this.kept--;
      }
      this.floorIndex = dropping;
    }
    if (this.head >= 1024 && this.head * 2 >= this.events.length) {
      this.events = this.events.slice(this.head);
      this.head = 0;
    }
  }
}
