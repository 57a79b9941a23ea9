/**
 * Which hand-overs a rebalance starts: a pure function of the state, run
 * in apply (the `rebalance` command) and for a dry run.
 *
 * Rules:
 *   - Sources are ALIVE, non-draining nodes whose utilization (node-load.ts:
 *     the fullest of meetings / capacity, CPU, and each dimension with a
 *     declared limit) is above the threshold; the fullest first, ties by id.
 *   - From a source, meetings in id order that have no hand-over under
 *     way; each goes where placement would put it (the source excluded,
 *     the meeting's region and labels kept), judged on projected figures:
 *     a meeting moved takes an equal share of its source's reported load
 *     along, and moves already planned (these and rebalancing hand-overs
 *     under way) are counted as done.
 *   - A move is made only if it lowers the fuller of the two: both the
 *     source and the target end below the source's utilization before.
 *     Two nodes equally full never trade a meeting back and forth.
 *   - At most `maxMoves`, and no more than `maxInFlight` rebalancing
 *     hand-overs under way at once (no herd).
 */
import { findPlacement } from "./placement.js";
import { type LoadFigures, shareOf, shiftShare, utilization } from "./node-load.js";
import type { NodeRecord } from "./model.js";
import type { PlannedMove } from "./move-commands.js";
import type { CoordinatorState } from "./state.js";
import { compareStrings } from "./labels.js";

export interface RebalanceOptions {
  readonly maxMoves: number;
  readonly maxInFlight: number;
  /** Utilization above which a node is relieved, in thousandths. */
  readonly thresholdPermille: number;
}

/** Meetings of one source tried for a target before the next source is. */
const TRIES_PER_SOURCE = 100;

interface Projected {
  readonly node: NodeRecord;
  assigned: number;
  load: LoadFigures;
  /** One meeting's share of the node's reported figures. */
  readonly share: LoadFigures;
}

export function planRebalance(state: CoordinatorState, o: RebalanceOptions): PlannedMove[] {
  const pending = state.pendingMoves();
  const inFlight = pending.filter((m) => m.reason === "REBALANCE").length;
  const allowed = Math.min(o.maxMoves, o.maxInFlight - inFlight);
  if (allowed <= 0) return [];
  const projected = new Map<string, Projected>();
  for (const node of state.nodes.values()) {
    projected.set(node.id, { node, assigned: node.assigned, load: node.load, share: shareOf(node.load, node.assigned) });
  }
  const taken = new Set(pending.map((m) => m.meetingId));
  for (const m of pending) {
    const from = projected.get(m.ownerId);
    const to = projected.get(m.toNodeId);
    if (m.reason === "REBALANCE" && from && to) shift(from, to);
  }
  const threshold = o.thresholdPermille / 1000;
  const util = (p: Projected, assignedDelta = 0, load = p.load) => utilization({ capacity: p.node.capacity, limits: p.node.limits, load }, p.assigned + assignedDelta);
  const moves: PlannedMove[] = [];
  while (moves.length < allowed) {
    const sources = [...projected.values()]
      .filter((p) => p.node.liveness === "ALIVE" && !p.node.draining && p.assigned > 0 && util(p) > threshold)
      .sort((a, b) => util(b) - util(a) || compareStrings(a.node.id, b.node.id));
    const move = firstMove(state, projected, sources, taken, util);
    if (!move) break;
    moves.push(move);
    taken.add(move.meetingId);
    shift(projected.get(move.fromNodeId)!, projected.get(move.toNodeId)!);
  }
  return moves;
}

function firstMove(
  state: CoordinatorState,
  projected: Map<string, Projected>,
  sources: readonly Projected[],
  taken: ReadonlySet<string>,
  util: (p: Projected, assignedDelta?: number, load?: LoadFigures) => number,
): PlannedMove | undefined {
  const candidates = () => [...projected.values()].map((p) => ({ ...p.node, assigned: p.assigned, load: p.load }));
  for (const source of sources) {
    let tries = 0;
    for (const meetingId of state.ownedSorted(source.node.id)) {
      const meeting = state.meetingOrThrow(meetingId);
      if (taken.has(meetingId) || meeting.move) continue;
      if (++tries > TRIES_PER_SOURCE) break;
      const to = findPlacement(candidates(), state.placementRequest(meeting, source.node.id));
      if (to === undefined) continue;
      const target = projected.get(to)!;
      const before = util(source);
      const sourceAfter = util(source, -1, shiftShare(source.load, source.share, -1));
      const targetAfter = util(target, 1, shiftShare(target.load, source.share, 1));
      if (Math.max(sourceAfter, targetAfter) >= before) continue;
      return { meetingId, fromNodeId: source.node.id, toNodeId: to };
    }
  }
  return undefined;
}

function shift(from: Projected, to: Projected): void {
  from.assigned -= 1;
  from.load = shiftShare(from.load, from.share, -1);
  to.assigned += 1;
  to.load = shiftShare(to.load, from.share, 1);
}
