/**
 * The meetings this node holds, and the rules that turn assignment events
 * into changes of that set. Pure bookkeeping: no I/O, no timers, no host
 * callbacks; the agent acts on the outcome `apply` returns.
 *
 * Each hold is a `HeldMeeting` object, a new one per tenure (assignment at
 * an epoch). Work started for a tenure (a checkpoint save) compares the
 * object it started with to `get(id)` before acting on the answer, so a
 * late answer about an old tenure never touches a newer one.
 *
 * Invariant: for every held meeting, `lastSequence` is at least the
 * sequence of the checkpoint received with its assignment, and grows by
 * one per save sent (sent, not acknowledged: a save that timed out may
 * have committed, and the next one must not be lower).
 */
import type { AssignmentEvent, Checkpoint } from "./coordinator-responses.js";

export interface HeldMeeting {
  readonly meetingId: string;
  readonly epoch: number;
  /** The highest sequence sent (or received with the assignment) for this meeting. */
  lastSequence: number;
  /** False after a resubscribe until the new watch stream re-announces it. */
  confirmed: boolean;
  /** A hand-over of this tenure was asked for: no more periodic saves; the final one goes with HandOver. */
  handingOver: boolean;
}

export type AssignmentOutcome =
  | { readonly kind: "assigned"; readonly meeting: HeldMeeting; readonly checkpoint: Checkpoint | undefined }
  /** Held at a lower epoch: the meeting moved away and back. The host must drop its copy and restore. */
  | { readonly kind: "reassigned"; readonly meeting: HeldMeeting; readonly previous: HeldMeeting; readonly checkpoint: Checkpoint | undefined }
  | { readonly kind: "revoked"; readonly meeting: HeldMeeting }
  /** HANDOVER of the held tenure, not yet under way. */
  | { readonly kind: "handover"; readonly meeting: HeldMeeting }
  /** Nothing to do (already held at this epoch, not held, or about an older epoch). */
  | { readonly kind: "unchanged"; readonly reason: string };

export class MeetingTable {
  private readonly held = new Map<string, HeldMeeting>();

  get size(): number {
    return this.held.size;
  }

  get(meetingId: string): HeldMeeting | undefined {
    return this.held.get(meetingId);
  }

  ids(): string[] {
    return [...this.held.keys()];
  }

  /** meeting id → epoch, a copy. */
  epochs(): Map<string, number> {
    return new Map([...this.held].map(([id, m]) => [id, m.epoch]));
  }

  /**
   * ASSIGNED: not held → hold; same epoch → confirm only; higher epoch →
   * a new tenure; lower epoch → stale, ignored.
   * REVOKED: held at an epoch not above the event's (or the event names no
   * epoch) → release; otherwise ignored (it is about an older tenure).
   * HANDOVER: held at exactly that epoch and not already handing over →
   * start the hand-over; otherwise ignored (a repeat, or another tenure).
   */
  apply(event: AssignmentEvent): AssignmentOutcome {
    const current = this.held.get(event.meetingId);
    switch (event.type) {
      case "ASSIGNED": {
        if (current && current.epoch === event.epoch) {
          current.confirmed = true;
          return { kind: "unchanged", reason: `already held at epoch ${event.epoch}` };
        }
        if (current && current.epoch > event.epoch) {
          return { kind: "unchanged", reason: `stale ASSIGNED at epoch ${event.epoch}; held at epoch ${current.epoch}` };
        }
        const meeting: HeldMeeting = {
          meetingId: event.meetingId,
          epoch: event.epoch,
          // Continue from the received checkpoint; never go below what this node already sent.
          lastSequence: Math.max(event.checkpoint?.sequence ?? 0, current?.lastSequence ?? 0),
          confirmed: true,
          handingOver: false,
        };
        this.held.set(event.meetingId, meeting);
        return current
          ? { kind: "reassigned", meeting, previous: current, checkpoint: event.checkpoint }
          : { kind: "assigned", meeting, checkpoint: event.checkpoint };
      }
      case "REVOKED": {
        if (!current) return { kind: "unchanged", reason: "REVOKED for a meeting not held" };
        if (event.epoch !== 0 && event.epoch < current.epoch) {
          return { kind: "unchanged", reason: `stale REVOKED at epoch ${event.epoch}; held at epoch ${current.epoch}` };
        }
        this.held.delete(event.meetingId);
        return { kind: "revoked", meeting: current };
      }
      case "HANDOVER": {
        if (!current || current.epoch !== event.epoch) return { kind: "unchanged", reason: `HANDOVER at epoch ${event.epoch} for a tenure not held` };
        if (current.handingOver) return { kind: "unchanged", reason: "the hand-over is already under way" };
        current.handingOver = true;
        return { kind: "handover", meeting: current };
      }
      default:
        return assertNever(event);
    }
  }

  /** Releases one tenure; false when `meeting` is no longer the current one. */
  release(meeting: HeldMeeting): boolean {
    if (this.held.get(meeting.meetingId) !== meeting) return false;
    this.held.delete(meeting.meetingId);
    return true;
  }

  /** Releases everything, returning what was held. */
  clear(): HeldMeeting[] {
    const all = [...this.held.values()];
    this.held.clear();
    return all;
  }

  /** A new watch stream opened: every held meeting must be re-announced. */
  markAllUnconfirmed(): void {
    for (const m of this.held.values()) m.confirmed = false;
  }

  hasUnconfirmed(): boolean {
    for (const m of this.held.values()) if (!m.confirmed) return true;
    return false;
  }

  /**
   * Settles the meetings the current stream did not re-announce:
   * `ownedEpochs` is what a linearizable read says this node owns now
   * (meeting id → epoch). One owned at the held epoch is confirmed (the
   * stream's member is only behind); every other one is released and
   * returned.
   */
  sweepUnconfirmed(ownedEpochs: ReadonlyMap<string, number>): HeldMeeting[] {
    const gone: HeldMeeting[] = [];
    for (const m of this.held.values()) {
      if (m.confirmed) continue;
      if (ownedEpochs.get(m.meetingId) === m.epoch) m.confirmed = true;
      else gone.push(m);
    }
    for (const m of gone) this.held.delete(m.meetingId);
    return gone;
  }

  /** The sequence for the next save of this tenure (and records it as sent). */
  allocateSequence(meeting: HeldMeeting): number {
    meeting.lastSequence += 1;
    return meeting.lastSequence;
  }
}

function assertNever(x: never): never {
  throw new Error(`invariant: unhandled assignment event ${JSON.stringify(x)}`);
}
