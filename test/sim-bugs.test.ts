/**
 * The checkers must bite: each deliberate bug in the core (a test-only
 * knob) is caught by the simulation within a modest number of seeds, and
 * the same seeds pass with the bug switched off.
 */
import { describe, expect, it } from "vitest";
import { ReadOnlyOption, type TestingBugs } from "../src/raft/index.js";
import { runSimulation } from "./sim/simulation.js";

function firstCaught(bugs: TestingBugs, maxSeeds: number, steps = 600, ackBeforeWrite = false): { seed: number; violation: string } | undefined {
  for (let seed = 1; seed <= maxSeeds; seed++) {
    const members = seed % 2 === 1 ? 3 : 5;
    const r = runSimulation({ seed, members, steps, bugs, readMode: ReadOnlyOption.Safe, ackBeforeWrite });
    if (r.violations.length > 0) return { seed, violation: r.violations[0]! };
  }
  return undefined;
}

describe("the simulation catches deliberate bugs", () => {
  const cases: [string, TestingBugs, number, number?][] = [
    ["(1) reads served without confirming leadership", { readWithoutQuorum: true }, 100],
    ["(2) entries of an earlier term committed by counting replicas", { commitPriorTermByCount: true }, 100],
    ["(3) term and vote not persisted before answering", { skipPersistTermAndVote: true }, 100],
    ["(4) log truncated on index alone", { truncateOnIndex: true }, 100],
    ["(5) ReadIndex answered before the term's first commit", { readIndexBeforeTermCommit: true }, 200],
    ["(6) vote up-to-date check reversed", { reverseUpToDateCheck: true }, 50],
  ];
  for (const [name, bugs, maxSeeds, steps] of cases) {
    it(name, () => {
      const caught = firstCaught(bugs, maxSeeds, steps);
      expect(caught, `not caught within ${maxSeeds} seeds`).toBeDefined();
      // The same seed is clean without the bug: it is the bug that was caught.
      const clean = runSimulation({ seed: caught!.seed, members: caught!.seed % 2 === 1 ? 3 : 5, ...(steps ? { steps } : {}), readMode: ReadOnlyOption.Safe });
      expect(clean.violations).toEqual([]);
    });
  }

  // A bug of the driver rather than the core: a member acknowledges
  // entries while its write is still in flight, so a leader commits (and
  // answers) what a crash can take from the majority it counted.
  it("(7) a member acknowledges entries before they are on its disk", () => {
    const caught = firstCaught({}, 20, 600, true);
    expect(caught, "not caught within 20 seeds").toBeDefined();
    expect(caught!.violation).toContain("held on disk by only");
    const clean = runSimulation({ seed: caught!.seed, members: caught!.seed % 2 === 1 ? 3 : 5, readMode: ReadOnlyOption.Safe });
    expect(clean.violations).toEqual([]);
  });
});
