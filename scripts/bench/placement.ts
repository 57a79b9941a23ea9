/**
 * placement: the CPU of one placement (findPlacement over every node, as
 * each member runs it in apply for every create and every moved meeting)
 * at 1,000 and 10,000 live nodes with load figures, in this process. At
 * ten times the scale it bounds creates and failovers on every member.
 * And the same creates answered by the placement index the state keeps
 * across commands (placement-index.ts), with the clock moving on.
 */
import type { PlacementCandidate } from "../../src/coordinator/placement.js";
import { findPlacement } from "../../src/coordinator/placement.js";
import { PlacementRanking } from "../../src/coordinator/placement-ranking.js";
import { PlacementIndex, SCAN } from "../../src/coordinator/placement-index.js";
import type { NodeRecord } from "../../src/coordinator/model.js";
import { DEFAULT_WEIGHTS, NO_LIMITS, NO_LOAD } from "../../src/coordinator/node-load.js";
import { notePlacement } from "../../src/coordinator/recent-placements.js";

function cluster(n: number): PlacementCandidate[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `s${i}`,
    liveness: "ALIVE" as const,
    draining: false,
    heldOutUntilMs: 0,
    capacity: 200,
    assigned: i % 150,
    recent: { bucket: 0, current: 0, previous: 0 },
    region: "",
    labels: [],
    limits: NO_LIMITS,
    load: { cpuPermille: (i * 7) % 1000, netInBytesPerSec: 0, netOutBytesPerSec: 0, participants: i % 50 },
  }));
}

/** µs per placement: the best of five rounds of `rounds` placements (after a warm-up round). */
function measure(nodes: PlacementCandidate[], rounds: number): number {
  const req = { region: "", requiredLabels: [], nowMs: 1_000_000, burstWindowMs: 2000 };
  let best = Infinity;
  for (let r = 0; r < 6; r++) {
    const start = process.hrtime.bigint();
    for (let k = 0; k < rounds; k++) if (findPlacement(nodes, req) === undefined) throw new Error("invariant: no placement");
    const us = Number(process.hrtime.bigint() - start) / 1e3 / rounds;
    if (r > 0) best = Math.min(best, us);
  }
  return best;
}

/**
 * ms to place `count` meetings in a row (a dead node's, as evacuate does),
 * each assigned before the next: a scan of every node per meeting, or one
 * ranking (placement-ranking.ts). Both choose the same nodes (checked).
 */
function inRow(nodeCount: number, count: number): { scanMs: number; rankedMs: number } {
  const req = { region: "", requiredLabels: [], nowMs: 1_000_000, burstWindowMs: 2000 };
  const place = (choose: (nodes: PlacementCandidate[]) => (() => string | undefined) & { placed?: (c: PlacementCandidate) => void }): { ms: number; chosen: string[] } => {
    const nodes = cluster(nodeCount) as (PlacementCandidate & { assigned: number })[];
    const byId = new Map(nodes.map((n) => [n.id, n]));
    const start = process.hrtime.bigint();
    const next = choose(nodes);
    const chosen: string[] = [];
    for (let k = 0; k < count; k++) {
      const id = next()!;
      chosen.push(id);
      byId.get(id)!.assigned++;
      next.placed?.(byId.get(id)!);
    }
    return { ms: Number(process.hrtime.bigint() - start) / 1e6, chosen };
  };
  const scan = place((nodes) => () => findPlacement(nodes, req));
  const ranked = place((nodes) => {
    const ranking = new PlacementRanking(nodes, req);
    return Object.assign(() => ranking.best(), { placed: (c: PlacementCandidate) => ranking.update(c) });
  });
  if (scan.chosen.join() !== ranked.chosen.join()) throw new Error("invariant: the ranking chose other nodes than the scans");
  return { scanMs: scan.ms, rankedMs: ranked.ms };
}

/**
 * µs per create, one after another as creates are applied, the clock
 * moving 2 ms per create (about the creates/s of a 10,000-node run) with
 * the default burst window of 10 s, on empty nodes of capacity 20 with no
 * load reported (as `scale`'s fleet): placements spread over every node,
 * so windows turn with about 5,000 nodes placed on lately. A scan of every
 * node each, or the index, told of each placement; and the longest single
 * create (a window's turn). Both choose the same nodes (checked).
 */
function creates(nodeCount: number, count: number): { scanUs: number; indexUs: number; indexMaxMs: number } {
  const windowMs = 10_000;
  const run = (useIndex: boolean): { us: number; maxMs: number; chosen: string[] } => {
    // Records as the state holds them: a literal of one shape, as apply-command.ts makes them.
    const nodes: NodeRecord[] = Array.from({ length: nodeCount }, (_, i) => ({
      id: `s${i}`,
      address: "",
      capacity: 20,
      region: "",
      labels: [],
      generation: 1,
      incarnation: "",
      liveness: "ALIVE",
      draining: false,
      deathsMs: [],
      heldOutUntilMs: 0,
      recent: { bucket: 0, current: 0, previous: 0 },
      assigned: 0,
      limits: NO_LIMITS,
      load: NO_LOAD,
      drainDeadlineMs: 0,
    }));
    const byId = new Map(nodes.map((n) => [n.id, n]));
    const index = new PlacementIndex(windowMs, DEFAULT_WEIGHTS);
    let nowMs = 1_000_000;
    index.rebuild(nodes, nowMs);
    const chosen: string[] = [];
    let maxNs = 0n;
    const start = process.hrtime.bigint();
    for (let k = 0; k < count; k++) {
      const one = process.hrtime.bigint();
      nowMs += 2;
      const req = { region: "", requiredLabels: [], nowMs, burstWindowMs: windowMs, weights: DEFAULT_WEIGHTS };
      const best = useIndex ? index.best(req) : SCAN;
      const id = best === SCAN ? findPlacement(nodes, req)! : best;
      const node = byId.get(id)!;
      node.assigned++;
      notePlacement(node.recent, nowMs, windowMs);
      if (useIndex) index.refile(node, nowMs);
      chosen.push(id);
      const took = process.hrtime.bigint() - one;
      if (took > maxNs) maxNs = took;
    }
    return { us: Number(process.hrtime.bigint() - start) / 1e3 / count, maxMs: Number(maxNs) / 1e6, chosen };
  };
  const scan = run(false);
  const indexed = run(true);
  if (scan.chosen.join() !== indexed.chosen.join()) throw new Error("invariant: the index chose other nodes than the scans");
  return { scanUs: scan.us, indexUs: indexed.us, indexMaxMs: indexed.maxMs };
}

export function benchPlacement(): Record<string, number | string> {
  inRow(10_000, 200); // warm-up
  const row = inRow(10_000, 1000);
  const applied = creates(10_000, 12_000);
  return {
    "µs per placement, 1,000 nodes": Number(measure(cluster(1000), 2000).toFixed(1)),
    "µs per placement, 10,000 nodes": Number(measure(cluster(10_000), 300).toFixed(1)),
    "1,000 meetings in a row, 10,000 nodes: a scan each / a ranking (ms)": `${row.scanMs.toFixed(0)} / ${row.rankedMs.toFixed(1)}`,
    "µs per create, 10,000 empty nodes, 12,000 creates over 24 s of clock: a scan each / the index": `${applied.scanUs.toFixed(1)} / ${applied.indexUs.toFixed(1)}`,
    "longest create through the index (a burst window's turn), ms": Number(applied.indexMaxMs.toFixed(2)),
  };
}
