/**
 * What the coordinator counts for its member's metrics, as plain numbers
 * on the hot path (read by src/member/member-metrics.ts when scraped):
 * checkpoint saves and fenced ones (on the member that ran the proposal:
 * the leader), and meeting moves, counted from every applied outcome on
 * every member, so each member's count is the group's.
 *
 * The time a move took, from the death of the node to the new owner's
 * assignment, is measured on the leader only: its failure detector knows
 * when the node fell silent or its connection broke. A meeting that had to
 * wait for room is measured when it is finally placed.
 */
import type { ApplyOutcome } from "../command-results.js";

/** Why a meeting moved: its node died, was drained or left, or it was placed after waiting for room. */
export type MoveReason = "node_dead" | "drain" | "deregister" | "placed_after_wait";

const REASONS: Readonly<Record<string, MoveReason>> = { setLiveness: "node_dead", drainNode: "drain", deregister: "deregister" };

/** Meetings waiting for a move to be timed, at most this many (the oldest are dropped). */
const MAX_WAITING = 100_000;

export class CoordinatorStats {
  checkpointSaves = 0;
  /** Checkpoint saves refused by fencing: a stale generation or epoch, a dead node, a lower sequence. */
  fencingRefusals = 0;
  readonly moves: Record<MoveReason, number> = { node_dead: 0, drain: 0, deregister: 0, placed_after_wait: 0 };
  /** Told each timed move's duration, in seconds (the member's histogram). */
  onMoveTimed: (seconds: number) => void = () => undefined;
  /** Meeting id → when its node died (on `now`'s clock), for meetings the leader is timing. */
  private readonly dyingSince = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * Called after every apply, on every member. `silentFor` is the leader's
   * failure detector (how long ago it last heard the node, or saw its
   * connection break); undefined on a follower.
   */
  noteApplied(outcome: ApplyOutcome, silentFor: ((nodeId: string) => number | undefined) | undefined): void {
    const result = outcome.result;
    const reason = (result.ok ? REASONS[result.type] : undefined) ?? "placed_after_wait";
    let dead: { nodeId: string; since: number } | undefined;
    if (silentFor && result.ok && result.type === "setLiveness" && result.changed && result.liveness === "DEAD") {
      const ago = silentFor(result.nodeId);
      if (ago !== undefined) dead = { nodeId: result.nodeId, since: this.now() - ago };
    }
    if (!silentFor && this.dyingSince.size > 0) this.dyingSince.clear();
    if (result.ok && result.type === "endMeeting") this.dyingSince.delete(result.meetingId);
    for (const e of outcome.events) {
      if (e.type === "REVOKED") {
        if (dead && e.nodeId === dead.nodeId) this.startTiming(e.meetingId, dead.since);
        continue;
      }
      if (e.epoch <= 1) continue; // a new meeting's first owner: no move
      this.moves[reason]++;
      const since = this.dyingSince.get(e.meetingId);
      if (since !== undefined) {
        this.dyingSince.delete(e.meetingId);
        this.onMoveTimed(Math.max(0, this.now() - since) / 1000);
      }
    }
  }

  private startTiming(meetingId: string, since: number): void {
    if (this.dyingSince.size >= MAX_WAITING) {
      const oldest = this.dyingSince.keys().next().value;
      if (oldest !== undefined) this.dyingSince.delete(oldest);
    }
    this.dyingSince.set(meetingId, since);
  }
}
