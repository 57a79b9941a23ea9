/**
 * Placement: which node hosts a new (or moving) meeting. A pure function of
 * the candidates and the request, called from apply, so it must decide the
 * same on every member: no clock (the time is in the request), no
 * randomness, no dependence on iteration order (ties go to the smaller id),
 * and exact arithmetic.
 *
 * Rules, in order:
 *   1. Eligible: liveness ALIVE (not SUSPECT or DEAD), not draining, not
 *      excluded, with room (assigned < capacity), and labels matching
 *      every key/value of the selector.
 *   2. Nodes held out by flap damping are a last resort: used only when no
 *      other eligible node exists. A meeting left unassigned for the whole
 *      hold-out (minutes) is worse than one on a server that may fail
 *      again; the chaos suite saw meetings answer 503 long after every
 *      fault had stopped because the only live servers were held out.
 *   3. If the request names a region and an eligible node is in it, only
 *      those nodes; otherwise every eligible node.
 *   4. Least loaded relative to capacity: (assigned + recent) / capacity,
 *      where `recent` counts placements of the last window or two (burst
 *      compensation, see recent-placements.ts). A fresh placement thus
 *      weighs double for a while, so a storm spreads out rather than
 *      filling whichever node looked emptiest before its meetings' load
 *      could show.
 *   5. Ties: the smaller node id (code-unit order).
 */
import { ResourceExhaustedError } from "./errors.js";
import { isHeldOut } from "./flap-damping.js";
import { type Labels, compareStrings, labelsMatch, labelsToString } from "./labels.js";
import type { Liveness } from "./model.js";
import { type RecentPlacements, countRecent } from "./recent-placements.js";

/** What placement reads of a node; `NodeRecord` satisfies it as is. */
export interface PlacementCandidate {
  readonly id: string;
  readonly liveness: Liveness;
  readonly draining: boolean;
  readonly heldOutUntilMs: number;
  readonly capacity: number;
  readonly assigned: number;
  readonly recent: Readonly<RecentPlacements>;
  readonly region: string;
  readonly labels: Labels;
}

export interface PlacementRequest {
  /** Preferred region; "" for none. */
  readonly region: string;
  /** Every key/value must be among the node's labels. */
  readonly requiredLabels: Labels;
  /** The replicated clock: for flap damping and recency. */
  readonly nowMs: number;
  readonly burstWindowMs: number;
  /** A node never to choose (the one being evacuated). */
  readonly excludeNodeId?: string;
}

/** Why a candidate is not eligible, or "" when it is (a held-out node is eligible, as a last resort). */
export type Ineligibility = "" | "excluded" | "dead" | "suspect" | "draining" | "full" | "labels";

const REASON_ORDER: readonly Ineligibility[] = ["full", "dead", "suspect", "draining", "labels", "excluded"];

export function ineligibility(c: PlacementCandidate, req: PlacementRequest): Ineligibility {
  if (c.id === req.excludeNodeId) return "excluded";
  if (c.liveness === "DEAD") return "dead";
  if (c.liveness === "SUSPECT") return "suspect";
  if (c.draining) return "draining";
  if (c.assigned >= c.capacity) return "full";
  if (!labelsMatch(c.labels, req.requiredLabels)) return "labels";
  return "";
}

/**
 * Compares (aWeight / a.capacity) with (bWeight / b.capacity) exactly, by
 * cross-multiplying; in BigInt when the products could pass 2^53.
 */
export function compareRelativeLoad(aWeight: number, aCapacity: number, bWeight: number, bCapacity: number): number {
  const left = aWeight * bCapacity;
  const right = bWeight * aCapacity;
  if (Number.isSafeInteger(left) && Number.isSafeInteger(right)) return left < right ? -1 : left > right ? 1 : 0;
  const bigLeft = BigInt(aWeight) * BigInt(bCapacity);
  const bigRight = BigInt(bWeight) * BigInt(aCapacity);
  return bigLeft < bigRight ? -1 : bigLeft > bigRight ? 1 : 0;
}

interface Scored {
  readonly candidate: PlacementCandidate;
  readonly weight: number;
}

function better(a: Scored, b: Scored | undefined): boolean {
  if (b === undefined) return true;
  const byLoad = compareRelativeLoad(a.weight, a.candidate.capacity, b.weight, b.candidate.capacity);
  return byLoad !== 0 ? byLoad < 0 : compareStrings(a.candidate.id, b.candidate.id) < 0;
}

/** The best of one pool (nodes held out or not): in the requested region if any, else anywhere. */
class Pool {
  private anywhere: Scored | undefined;
  private inRegion: Scored | undefined;

  offer(scored: Scored, region: string): void {
    if (better(scored, this.anywhere)) this.anywhere = scored;
    if (region !== "" && scored.candidate.region === region && better(scored, this.inRegion)) this.inRegion = scored;
  }

  get best(): Scored | undefined {
    return this.inRegion ?? this.anywhere;
  }
}

/** The chosen node id, or undefined when no candidate is eligible. One pass. */
export function findPlacement(candidates: Iterable<PlacementCandidate>, req: PlacementRequest): string | undefined {
  const preferred = new Pool();
  const heldOut = new Pool();
  for (const candidate of candidates) {
    if (ineligibility(candidate, req) !== "") continue;
    const scored = { candidate, weight: candidate.assigned + countRecent(candidate.recent, req.nowMs, req.burstWindowMs) };
    (isHeldOut(candidate.heldOutUntilMs, req.nowMs) ? heldOut : preferred).offer(scored, req.region);
  }
  return (preferred.best ?? heldOut.best)?.candidate.id;
}

/**
 * The chosen node id; throws ResourceExhaustedError, with a count of why
 * each node was passed over, when none is eligible.
 */
export function choosePlacement(candidates: Iterable<PlacementCandidate>, req: PlacementRequest): string {
  const list = Array.isArray(candidates) ? (candidates as readonly PlacementCandidate[]) : [...candidates];
  const chosen = findPlacement(list, req);
  if (chosen === undefined) throw new ResourceExhaustedError(explainNoPlacement(list, req));
  return chosen;
}

/** "no live node has room (3 nodes: 2 full, 1 dead)", for operators. */
export function explainNoPlacement(candidates: Iterable<PlacementCandidate>, req: PlacementRequest): string {
  const counts = new Map<Ineligibility, number>();
  let total = 0;
  for (const c of candidates) {
    total++;
    const why = ineligibility(c, req);
    counts.set(why, (counts.get(why) ?? 0) + 1);
  }
  // A fixed order of reasons: the message must not depend on the nodes' order.
  const reasons = REASON_ORDER.filter((why) => counts.has(why)).map((why) => {
    const n = counts.get(why)!;
    return why === "labels" ? `${n} without labels ${labelsToString(req.requiredLabels)}` : `${n} ${why}`;
  });
  return total === 0 ? "no live node has room (no node is registered)" : `no live node has room (${total} nodes: ${reasons.join(", ")})`;
}
