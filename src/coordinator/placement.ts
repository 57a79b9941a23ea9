/**
 * Placement: which node hosts a new (or moving) meeting. A pure function of
 * the candidates and the request, called from apply, so it must decide the
 * same on every member: no clock (the time is in the request), no
 * randomness, no dependence on iteration order (ties go to the smaller id),
 * and arithmetic done in one fixed order.
 *
 * Rules, in order:
 *   1. Eligible: liveness ALIVE (not SUSPECT or DEAD), not draining, not
 *      excluded, with room (assigned < capacity), no reported figure at or
 *      over a limit the node declared (node-load.ts), labels matching
 *      every key/value of the selector and none of the excluded ones.
 *   2. A preferred node (GetRoute's preferred_node_id) that is eligible is
 *      chosen; one that is not is ignored and the rules below decide.
 *   3. Nodes held out by flap damping are a last resort: used only when no
 *      other eligible node exists. A meeting left unassigned for the whole
 *      hold-out (minutes) is worse than one on a server that may fail
 *      again; the chaos suite saw meetings answer 503 long after every
 *      fault had stopped because the only live servers were held out.
 *   4. If the request names a region and an eligible node is in it, only
 *      those nodes; otherwise every eligible node.
 *   5. The lowest load score: the weighted sum of (assigned + recent) /
 *      capacity and of each reported figure relative to its limit (or a
 *      default scale), see node-load.ts. `recent` counts placements of the
 *      last window or two (burst compensation, see recent-placements.ts):
 *      a fresh placement weighs double for a while, so a storm spreads out
 *      rather than filling whichever node looked emptiest before its
 *      meetings' load could show. Choosing the least loaded, rather than
 *      packing, is what spreads meetings within a region. While no node
 *      reports figures the score is the meetings ratio alone, API.md's
 *      "least loaded relative to capacity".
 *   6. Equal scores: the smaller exact meetings ratio (compared by
 *      cross-multiplying, so ratios too close for a double still order),
 *      then the smaller node id (code-unit order).
 */
import { ResourceExhaustedError } from "./errors.js";
import { isHeldOut } from "./flap-damping.js";
import { type Labels, NO_LABELS, compareStrings, labelsMatch, labelsShareAny, labelsToString } from "./labels.js";
import type { Liveness } from "./model.js";
import { DEFAULT_WEIGHTS, type LoadFigures, type LoadedNode, NO_LIMITS, NO_LOAD, type NodeLimits, type PlacementWeights, loadScore, overALimit } from "./node-load.js";
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
  /** Declared hard limits and reported figures; none and zero when absent. */
  readonly limits?: NodeLimits;
  readonly load?: LoadFigures;
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
  /** No key/value of these may be among the node's labels; none when absent. */
  readonly excludedLabels?: Labels;
  /** Chosen when eligible (rule 2). */
  readonly preferredNodeId?: string;
  /** Weights of the score; DEFAULT_WEIGHTS when absent. */
  readonly weights?: PlacementWeights;
}

/** Why a candidate is not eligible, or "" when it is (a held-out node is eligible, as a last resort). */
export type Ineligibility = "" | "excluded" | "dead" | "suspect" | "draining" | "full" | "over-limit" | "labels" | "excluded-labels";

const REASON_ORDER: readonly Ineligibility[] = ["full", "over-limit", "dead", "suspect", "draining", "labels", "excluded-labels", "excluded"];

export function ineligibility(c: PlacementCandidate, req: PlacementRequest): Ineligibility {
  if (c.id === req.excludeNodeId) return "excluded";
  if (c.liveness === "DEAD") return "dead";
  if (c.liveness === "SUSPECT") return "suspect";
  if (c.draining) return "draining";
  if (c.assigned >= c.capacity) return "full";
  if (overALimit(loaded(c))) return "over-limit";
  if (req.requiredLabels.length > 0 && !labelsMatch(c.labels, req.requiredLabels)) return "labels";
  if (req.excludedLabels && req.excludedLabels.length > 0 && labelsShareAny(c.labels, req.excludedLabels)) return "excluded-labels";
  return "";
}

/** What the load rules read of a candidate: the candidate itself when it has both (a NodeRecord does), so the hot loop allocates nothing. */
function loaded(c: PlacementCandidate): LoadedNode {
  if (c.limits !== undefined && c.load !== undefined) return c as LoadedNode;
  return { capacity: c.capacity, limits: c.limits ?? NO_LIMITS, load: c.load ?? NO_LOAD };
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

/** An eligible node with what placement ranks it by, as they were when it was scored. */
export interface Scored {
  readonly candidate: PlacementCandidate;
  /** assigned + recent */
  readonly weight: number;
  readonly score: number;
}

/** Scores an (eligible) candidate for `req`. */
export function scoreOf(candidate: PlacementCandidate, req: PlacementRequest): Scored {
  const weight = candidate.assigned + countRecent(candidate.recent, req.nowMs, req.burstWindowMs);
  return { candidate, weight, score: loadScore(loaded(candidate), weight, req.weights ?? DEFAULT_WEIGHTS) };
}

/** Placement's order (rules 5 and 6): the lower score, then the lower exact meetings ratio, then the smaller id. A total order. */
export function compareScored(a: Scored, b: Scored): number {
  return compareRanks(a.candidate, a.weight, a.score, b);
}

function compareRanks(candidate: PlacementCandidate, weight: number, score: number, b: Scored): number {
  if (score !== b.score) return score < b.score ? -1 : 1;
  const byLoad = compareRelativeLoad(weight, candidate.capacity, b.weight, b.candidate.capacity);
  return byLoad !== 0 ? byLoad : compareStrings(candidate.id, b.candidate.id);
}

/** Whether (candidate, weight, score) ranks before `b`. */
function better(candidate: PlacementCandidate, weight: number, score: number, b: Scored | undefined): boolean {
  return b === undefined || compareRanks(candidate, weight, score, b) < 0;
}

/**
 * The best of one pool (nodes held out or not): in the requested region if
 * any, else anywhere. A candidate is kept (allocated) only when it leads:
 * the pass over thousands of nodes allocates almost nothing.
 */
class Pool {
  private anywhere: Scored | undefined;
  private inRegion: Scored | undefined;

  offer(candidate: PlacementCandidate, weight: number, score: number, region: string): void {
    const leadsAnywhere = better(candidate, weight, score, this.anywhere);
    const leadsRegion = region !== "" && candidate.region === region && better(candidate, weight, score, this.inRegion);
    if (!leadsAnywhere && !leadsRegion) return;
    const scored = { candidate, weight, score };
    if (leadsAnywhere) this.anywhere = scored;
    if (leadsRegion) this.inRegion = scored;
  }

  get best(): Scored | undefined {
    return this.inRegion ?? this.anywhere;
  }
}

/** The chosen node id, or undefined when no candidate is eligible. One pass. */
export function findPlacement(candidates: Iterable<PlacementCandidate>, req: PlacementRequest): string | undefined {
  const preferred = new Pool();
  const heldOut = new Pool();
  const weights = req.weights ?? DEFAULT_WEIGHTS;
  for (const candidate of candidates) {
    if (ineligibility(candidate, req) !== "") continue;
    if (candidate.id === req.preferredNodeId) return candidate.id;
    const weight = candidate.assigned + countRecent(candidate.recent, req.nowMs, req.burstWindowMs);
    const score = loadScore(loaded(candidate), weight, weights);
    (isHeldOut(candidate.heldOutUntilMs, req.nowMs) ? heldOut : preferred).offer(candidate, weight, score, req.region);
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
    if (why === "labels") return `${n} without labels ${labelsToString(req.requiredLabels)}`;
    if (why === "excluded-labels") return `${n} with excluded labels ${labelsToString(req.excludedLabels ?? NO_LABELS)}`;
    if (why === "over-limit") return `${n} at a declared load limit`;
    return `${n} ${why}`;
  });
  return total === 0 ? "no live node has room (no node is registered)" : `no live node has room (${total} nodes: ${reasons.join(", ")})`;
}
