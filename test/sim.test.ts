/**
 * The deterministic simulation over many seeds, as CI runs it: 1,000 seeds
 * of each cluster size, each with crashes, partitions, message faults,
 * compaction, transfers and membership changes, and a linearizability
 * check of the client history. Any violation prints the replay command.
 */
import { describe, expect, it } from "vitest";
import { runSimulation } from "./sim/simulation.js";

const SEEDS = Number(process.env.SIM_SEEDS ?? 1000);

function runSeeds(members: number, from: number, count: number): string[] {
  const failures: string[] = [];
  for (let seed = from; seed < from + count; seed++) {
    const result = runSimulation({ seed, members });
    if (result.violations.length > 0) {
      failures.push(`seed ${seed}: ${result.violations[0]} (replay: npm run sim -- --seed ${seed} --members ${members})`);
    }
  }
  return failures;
}

describe("cluster simulation", () => {
  // Split into chunks so vitest reports progress and a failure names its range.
  for (const members of [3, 5]) {
    const chunk = 250;
    for (let from = 1; from <= SEEDS; from += chunk) {
      const count = Math.min(chunk, SEEDS - from + 1);
      it(`${members} members, seeds ${from}-${from + count - 1}: no violations`, () => {
        expect(runSeeds(members, from, count)).toEqual([]);
      });
    }
  }

  it("replays a seed exactly", () => {
    const a = runSimulation({ seed: 4242, members: 5 });
    const b = runSimulation({ seed: 4242, members: 5 });
    expect(b).toEqual(a);
  });

  it("really exercises every kind of fault and operation", () => {
    // A simulation that silently stopped injecting faults would pass every
    // seed; these totals over 100 seeds show that each kind happens often.
    const totals: Record<string, number> = {};
    let acked = 0;
    for (let seed = 1; seed <= 100; seed++) {
      const r = runSimulation({ seed, members: seed % 2 === 1 ? 3 : 5 });
      acked += r.acked;
      for (const [k, v] of Object.entries(r.coverage)) totals[k] = (totals[k] ?? 0) + v;
    }
    // About 29 acknowledged writes per seed on average (seeds 1–600); how
    // many exactly moves with any change to election timing.
    expect(acked).toBeGreaterThan(2500);
    for (const kind of ["crashes", "partitions", "snapshotsSent", "compactions", "transfers", "memberReplacements", "reads", "leaseReads"]) {
      expect(totals[kind], kind).toBeGreaterThan(20);
    }
    expect(totals.leaderTerms).toBeGreaterThan(500);
  });
});
