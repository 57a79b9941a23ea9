/**
 * A node's load beyond its meeting count: what its heartbeats report (CPU,
 * network bytes per second in and out, participants), the hard limits it
 * declares at Register, and the numbers placement and rebalancing derive
 * from them.
 *
 * Held as integers (CPU in thousandths, bytes per second, participants) so
 * that every member stores and compares the same values: the service
 * rounds what it receives before the figures enter a command, and apply
 * only divides and adds them in a fixed order (IEEE-754 arithmetic gives
 * the same result on every member for the same operations).
 *
 * Figures reach the replicated state through the leader's `reportLoad`
 * command, not through heartbeats (which are no Raft writes): see
 * service/load-reports.ts for how often.
 */
import { InvalidArgumentError } from "./errors.js";
import { shown, validateUint } from "./ids.js";

export interface NodeLimits {
  /** CPU use in thousandths (1..1000); 0: none declared. */
  readonly cpuPermille: number;
  readonly netInBytesPerSec: number;
  readonly netOutBytesPerSec: number;
  readonly participants: number;
}

export interface LoadFigures {
  readonly cpuPermille: number;
  readonly netInBytesPerSec: number;
  readonly netOutBytesPerSec: number;
  readonly participants: number;
}

export interface NodeLoad extends LoadFigures {
  /** The replicated clock when these figures were written; 0: never reported. */
  readonly reportedAtMs: number;
}

export const NO_LIMITS: NodeLimits = { cpuPermille: 0, netInBytesPerSec: 0, netOutBytesPerSec: 0, participants: 0 };
export const NO_LOAD: NodeLoad = { cpuPermille: 0, netInBytesPerSec: 0, netOutBytesPerSec: 0, participants: 0, reportedAtMs: 0 };

/**
 * What one unit of a dimension is measured against when the node declared
 * no limit for it: a whole CPU, 1 Gbit/s each way, 1,000 participants.
 * Only for scoring; a dimension without a declared limit is never a hard
 * limit.
 */
export const DEFAULT_SCALES: LoadFigures = { cpuPermille: 1000, netInBytesPerSec: 125_000_000, netOutBytesPerSec: 125_000_000, participants: 1000 };

/** How much each dimension weighs in placement's score (state config `placementWeights`). */
export interface PlacementWeights {
  /** (assigned + recent placements) / capacity: API.md's rule; the only term while nothing else is reported. */
  readonly meetings: number;
  readonly cpu: number;
  readonly netIn: number;
  readonly netOut: number;
  readonly participants: number;
}

export const DEFAULT_WEIGHTS: PlacementWeights = { meetings: 1, cpu: 1, netIn: 1, netOut: 1, participants: 1 };

export const MAX_WEIGHT = 1000;

const DIMENSIONS = ["cpuPermille", "netInBytesPerSec", "netOutBytesPerSec", "participants"] as const;
type Dimension = (typeof DIMENSIONS)[number];

/** CPU as the API sends it (a double in 0..1) → thousandths, rounded: what enters commands. */
export function cpuToPermille(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new InvalidArgumentError(`${field} must be a number in 0..1, got ${shown(value)}`);
  }
  return Math.round(value * 1000);
}

/** Figures as decoded from a command or request: integers, CPU in 0..1000. */
export function validateFigures(raw: unknown, field: string): LoadFigures {
  const r = requireMap(raw, field);
  const cpuPermille = validateUint(r["cpuPermille"] ?? 0, `${field}.cpu`);
  if (cpuPermille > 1000) throw new InvalidArgumentError(`${field}.cpu must be at most 1000 thousandths, got ${cpuPermille}`);
  return {
    cpuPermille,
    netInBytesPerSec: validateUint(r["netInBytesPerSec"] ?? 0, `${field}.net_in_bytes_per_sec`),
    netOutBytesPerSec: validateUint(r["netOutBytesPerSec"] ?? 0, `${field}.net_out_bytes_per_sec`),
    participants: validateUint(r["participants"] ?? 0, `${field}.participants`),
  };
}

/** Declared limits; absent means none (0 in every dimension). */
export function validateLimits(raw: unknown, field = "limits"): NodeLimits {
  if (raw === undefined || raw === null) return NO_LIMITS;
  return validateFigures(raw, field);
}

export function validateWeights(raw: PlacementWeights): PlacementWeights {
  if (raw === null || typeof raw !== "object") throw new InvalidArgumentError(`placementWeights must be a map of numbers, got ${shown(raw)}`);
  for (const key of ["meetings", "cpu", "netIn", "netOut", "participants"] as const) {
    const w = raw[key];
    if (typeof w !== "number" || !Number.isFinite(w) || w < 0 || w > MAX_WEIGHT) {
      throw new InvalidArgumentError(`placementWeights.${key} must be a number from 0 to ${MAX_WEIGHT}, got ${shown(w)}`);
    }
  }
  return raw;
}

function requireMap(raw: unknown, field: string): Record<string, unknown> {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw new InvalidArgumentError(`${field} must be a map, got ${shown(raw)}`);
  return raw as Record<string, unknown>;
}

/** What these functions read of a node; NodeRecord and PlacementCandidate fit. */
export interface LoadedNode {
  readonly capacity: number;
  readonly limits: NodeLimits;
  readonly load: LoadFigures;
}

/** Whether a reported figure is at or over a declared limit: such a node takes no meeting. */
export function overALimit(node: LoadedNode): boolean {
  // Written out rather than looped over DIMENSIONS: placement runs this for every node on every create.
  const { limits, load } = node;
  return (
    (limits.cpuPermille > 0 && load.cpuPermille >= limits.cpuPermille) ||
    (limits.netInBytesPerSec > 0 && load.netInBytesPerSec >= limits.netInBytesPerSec) ||
    (limits.netOutBytesPerSec > 0 && load.netOutBytesPerSec >= limits.netOutBytesPerSec) ||
    (limits.participants > 0 && load.participants >= limits.participants)
  );
}

/**
 * Placement's score (lower is better): the weighted sum of each
 * dimension's use relative to its limit (or its default scale), the
 * meetings term being (assigned + recent) / capacity. Terms are added in
 * one fixed order.
 */
export function loadScore(node: LoadedNode, meetingWeight: number, weights: PlacementWeights): number {
  // Written out in DIMENSIONS' order (the sum's order must not change: every member must score alike), not looped: placement scores every node on every create.
  const { limits, load } = node;
  let score = weights.meetings * (meetingWeight / node.capacity);
  if (weights.cpu !== 0 && load.cpuPermille !== 0) score += weights.cpu * (load.cpuPermille / (limits.cpuPermille > 0 ? limits.cpuPermille : DEFAULT_SCALES.cpuPermille));
  if (weights.netIn !== 0 && load.netInBytesPerSec !== 0) {
    score += weights.netIn * (load.netInBytesPerSec / (limits.netInBytesPerSec > 0 ? limits.netInBytesPerSec : DEFAULT_SCALES.netInBytesPerSec));
  }
  if (weights.netOut !== 0 && load.netOutBytesPerSec !== 0) {
    score += weights.netOut * (load.netOutBytesPerSec / (limits.netOutBytesPerSec > 0 ? limits.netOutBytesPerSec : DEFAULT_SCALES.netOutBytesPerSec));
  }
  if (weights.participants !== 0 && load.participants !== 0) {
    score += weights.participants * (load.participants / (limits.participants > 0 ? limits.participants : DEFAULT_SCALES.participants));
  }
  return score;
}

/**
 * How full a node is, for rebalancing: the largest of assigned / capacity,
 * CPU against its limit (or a whole CPU), and each other reported
 * dimension against its declared limit. 1 means full in some dimension.
 */
export function utilization(node: LoadedNode, assigned: number): number {
  let max = assigned / node.capacity;
  for (const d of DIMENSIONS) {
    const scale = d === "cpuPermille" ? scaleOf(node, d) : node.limits[d];
    if (scale > 0) max = Math.max(max, node.load[d] / scale);
  }
  return max;
}

function scaleOf(node: LoadedNode, d: Dimension): number {
  return node.limits[d] > 0 ? node.limits[d] : DEFAULT_SCALES[d];
}

/**
 * The figures a node would have without one of its `assigned` meetings
 * (each is taken to weigh the same share), or with one more such share
 * (`sign` +1): the rebalancer's estimate, since nothing reports what one
 * meeting costs.
 */
export function shiftShare(load: LoadFigures, share: LoadFigures, sign: 1 | -1): LoadFigures {
  return {
    cpuPermille: Math.max(0, load.cpuPermille + sign * share.cpuPermille),
    netInBytesPerSec: Math.max(0, load.netInBytesPerSec + sign * share.netInBytesPerSec),
    netOutBytesPerSec: Math.max(0, load.netOutBytesPerSec + sign * share.netOutBytesPerSec),
    participants: Math.max(0, load.participants + sign * share.participants),
  };
}

/** One meeting's share of a node's figures (all zero for a node with none). */
export function shareOf(load: LoadFigures, assigned: number): LoadFigures {
  if (assigned <= 0) return { cpuPermille: 0, netInBytesPerSec: 0, netOutBytesPerSec: 0, participants: 0 };
  return {
    cpuPermille: load.cpuPermille / assigned,
    netInBytesPerSec: load.netInBytesPerSec / assigned,
    netOutBytesPerSec: load.netOutBytesPerSec / assigned,
    participants: load.participants / assigned,
  };
}

/** "cpu 0.42, in 1.2 MB/s, out 3.4 MB/s, 120 participants", for audit summaries. */
export function figuresToString(f: LoadFigures): string {
  const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB/s`;
  return `cpu ${(f.cpuPermille / 1000).toFixed(3)}, in ${mb(f.netInBytesPerSec)}, out ${mb(f.netOutBytesPerSec)}, ${f.participants} participants`;
}
