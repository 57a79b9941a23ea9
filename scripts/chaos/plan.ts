/**
 * The fault plan: which faults a run injects, in which order, with which
 * parameters. A pure function of the seed: the same seed gives the same
 * faults (kind, pick, durations, gaps). Which process a fault hits is
 * resolved when it runs ("the leader" is whoever leads then; a pick is an
 * index into the candidates of that moment), so only the resolution, never
 * the plan, depends on timing.
 *
 * Two lanes run side by side, each one fault at a time:
 *   members: kill -9 / pause / partitions / replacement of coordinator members
 *   edge:    kill -9 / pause of meeting servers, kill -9 of gateways
 * Each lane starts with one fault of every kind it has (in seeded order), so
 * even a short run covers every kind; after that kinds are drawn by weight.
 * Every fault draws the same four numbers from its lane's generator, so one
 * fault's kind never shifts the next fault's parameters.
 */
import { SeededRandom } from "../../src/raft/random.js";

export type MemberFaultKind =
  | "kill-leader"
  | "kill-follower"
  | "pause-leader"
  | "isolate-member"
  | "partition-leader"
  | "cut-link"
  | "replace-member";
export type EdgeFaultKind = "kill-server" | "pause-server" | "kill-gateway";
export type FaultKind = MemberFaultKind | EdgeFaultKind;
export type Lane = "members" | "edge";

export interface PlannedFault {
  readonly lane: Lane;
  /** Position in its lane, from 0. */
  readonly index: number;
  readonly kind: FaultKind;
  /** Wait before this fault starts, after the previous one of the lane ended. */
  readonly gapMs: number;
  /** A uniform 32-bit number: picks the target among the candidates of the moment (pick % count). */
  readonly pick: number;
  /** How long the fault lasts: down time before a restart, pause, or partition. */
  readonly durationMs: number;
}

const MEMBER_WEIGHTS: readonly (readonly [MemberFaultKind, number])[] = [
  ["kill-leader", 30],
  ["kill-follower", 30],
  ["pause-leader", 10],
  ["isolate-member", 9],
  ["partition-leader", 8],
  ["cut-link", 8],
  ["replace-member", 5],
];
const EDGE_WEIGHTS: readonly (readonly [EdgeFaultKind, number])[] = [
  ["kill-server", 55],
  ["pause-server", 15],
  ["kill-gateway", 30],
];

export const ALL_FAULT_KINDS: readonly FaultKind[] = [...MEMBER_WEIGHTS.map(([k]) => k), ...EDGE_WEIGHTS.map(([k]) => k)];

/** [min, max] duration of each kind, ms. */
const DURATION: Record<FaultKind, readonly [number, number]> = {
  "kill-leader": [300, 2500],
  "kill-follower": [300, 2500],
  "pause-leader": [2000, 4000],
  "isolate-member": [2000, 5000],
  "partition-leader": [2000, 5000],
  "cut-link": [2000, 5000],
  // The old member stays down for good; this is the pause before the new one starts.
  "replace-member": [200, 1000],
  "kill-server": [500, 3000],
  // The least pause: it lasts until the server is declared dead, at most PAUSE_SERVER_MAX_MS.
  "pause-server": [2000, 3500],
  "kill-gateway": [300, 2000],
};

export function laneOf(kind: FaultKind): Lane {
  return EDGE_WEIGHTS.some(([k]) => k === kind) ? "edge" : "members";
}

/** Lane seeds are derived from the run seed and the lane, so adding faults to one lane never changes the other. */
function laneRandom(seed: number, lane: Lane): SeededRandom {
  const root = new SeededRandom(seed ^ (lane === "members" ? 0x6d656d62 : 0x65646765));
  root.nextUint32();
  return root.fork();
}

function weighted<K>(rand: number, weights: readonly (readonly [K, number])[]): K {
  const total = weights.reduce((s, [, w]) => s + w, 0);
  let at = rand * total;
  for (const [k, w] of weights) {
    if (at < w) return k;
    at -= w;
  }
  return weights[weights.length - 1]![0];
}

/** The faults of one lane, in order, without end; the runner stops taking them when time is up. */
export function* laneFaults(seed: number, lane: Lane, meanGapMs: number): Generator<PlannedFault> {
  const random = laneRandom(seed, lane);
  const weights: readonly (readonly [FaultKind, number])[] = lane === "members" ? MEMBER_WEIGHTS : EDGE_WEIGHTS;
  // The opening round: every kind once, shuffled (Fisher-Yates on the lane's generator).
  const opening = weights.map(([k]) => k);
  for (let i = opening.length - 1; i > 0; i--) {
    const j = random.intBelow(i + 1);
    [opening[i], opening[j]] = [opening[j]!, opening[i]!];
  }
  for (let index = 0; ; index++) {
    const kindDraw = random.next();
    const gapDraw = random.next();
    const pick = random.nextUint32();
    const durationDraw = random.next();
    const kind = index < opening.length ? opening[index]! : weighted(kindDraw, weights);
    const [lo, hi] = DURATION[kind];
    // The opening round goes at a brisk pace (short gaps, durations near the
    // least) so a short run sees every kind.
    const inOpening = index < opening.length;
    const gapScale = inOpening ? 0.4 : 1;
    const durationScale = inOpening ? 0.25 : 1;
    yield {
      lane,
      index,
      kind,
      gapMs: Math.round(meanGapMs * gapScale * (0.5 + gapDraw)),
      pick,
      durationMs: Math.round(lo + durationDraw * durationScale * (hi - lo)),
    };
  }
}

/** The planned faults of both lanes for about `durationS`, assuming each takes its duration plus `overheadMs` (for --plan). */
export function previewPlan(seed: number, durationS: number, meanGapMs: number, overheadMs = 2500): PlannedFault[] {
  const out: PlannedFault[] = [];
  for (const lane of ["members", "edge"] as const) {
    let t = 0;
    for (const fault of laneFaults(seed, lane, meanGapMs)) {
      t += fault.gapMs;
      if (t >= durationS * 1000) break;
      out.push(fault);
      t += fault.durationMs + overheadMs;
    }
  }
  return out;
}

/**
 * The most kill -9s of meeting servers a run of `durationS` can make: the
 * edge lane's kill-server faults that start before the deadline if every
 * fault took no longer than its planned duration (a real one takes at
 * least that, so no run makes more). Each restart after one may need a
 * fresh node id (flap damping), so security.ts makes that many agent
 * tokens per server slot.
 */
export function killServerBound(seed: number, durationS: number, meanGapMs: number): number {
  return previewPlan(seed, durationS, meanGapMs, 0).filter((f) => f.kind === "kill-server").length;
}
