/**
 * Placement for many meetings in a row: a dead node's meetings, the queue
 * of unassigned ones. findPlacement scans every node for every meeting;
 * at 10,000 nodes that is 0.25 ms a meeting on every member, so a death of
 * many servers at once held every member's event loop for seconds (longer
 * than an election timeout) inside one apply. A ranking orders the
 * eligible nodes once by findPlacement's own order and, after each
 * placement, moves only the node that changed: the same choices, meeting
 * by meeting, at a binary search each.
 *
 * It holds for one request (region, labels, clock, weights): every
 * meeting it places must ask exactly that, and every change to a node's
 * placement inputs while it lives must be reported with `update`.
 */
import { isHeldOut } from "./flap-damping.js";
import { type PlacementCandidate, type PlacementRequest, type Scored, compareScored, ineligibility, scoreOf } from "./placement.js";
import { insertSorted, removeSorted } from "./sorted-list.js";

export class PlacementRanking {
  /** Eligible nodes not held out, then those held out (a last resort), each in placement order. */
  private readonly pools: [Scored[], Scored[]] = [[], []];
  private readonly entries = new Map<string, { scored: Scored; pool: 0 | 1 }>();

  constructor(
    candidates: Iterable<PlacementCandidate>,
    private readonly req: PlacementRequest,
  ) {
    if (req.preferredNodeId) throw new Error("invariant: a ranking places no meeting with a preferred node");
    for (const c of candidates) this.add(c);
    for (const pool of this.pools) pool.sort(compareScored);
  }

  /** What findPlacement would choose now: the first in the region if any, else the first, of the pool not held out, else of the held-out one. */
  best(): string | undefined {
    for (const pool of this.pools) {
      if (pool.length === 0) continue;
      if (this.req.region !== "") {
        for (const s of pool) if (s.candidate.region === this.req.region) return s.candidate.id;
      }
      return pool[0]!.candidate.id;
    }
    return undefined;
  }

  /** `candidate`'s inputs changed (a meeting assigned to it or taken from it): re-rank it. */
  update(candidate: PlacementCandidate): void {
    const old = this.entries.get(candidate.id);
    if (old) {
      removeSorted(this.pools[old.pool], old.scored, compareScored, `node ${candidate.id}`);
      this.entries.delete(candidate.id);
    }
    const scored = this.add(candidate, false);
    if (scored) insertSorted(this.pools[this.entries.get(candidate.id)!.pool], scored, compareScored);
  }

  /** Scores and files `c` if eligible; appended unsorted while building, else returned for the caller to insert. */
  private add(c: PlacementCandidate, append = true): Scored | undefined {
    if (ineligibility(c, this.req) !== "") return undefined;
    const scored = scoreOf(c, this.req);
    const pool = isHeldOut(c.heldOutUntilMs, this.req.nowMs) ? 1 : 0;
    this.entries.set(c.id, { scored, pool });
    if (append) this.pools[pool].push(scored);
    return scored;
  }
}
