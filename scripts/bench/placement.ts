/**
 * placement: the CPU of one placement (findPlacement over every node, as
 * each member runs it in apply for every create and every moved meeting)
 * at 1,000 and 10,000 live nodes with load figures, in this process. At
 * ten times the scale it bounds creates and failovers on every member.
 */
import type { PlacementCandidate } from "../../src/coordinator/placement.js";
import { findPlacement } from "../../src/coordinator/placement.js";
import { NO_LIMITS } from "../../src/coordinator/node-load.js";

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

export function benchPlacement(): Record<string, number | string> {
  return {
    "µs per placement, 1,000 nodes": Number(measure(cluster(1000), 2000).toFixed(1)),
    "µs per placement, 10,000 nodes": Number(measure(cluster(10_000), 300).toFixed(1)),
  };
}
