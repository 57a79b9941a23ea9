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
    expect(a.acked).toBeGreaterThan(10);
  });
});
