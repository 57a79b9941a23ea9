/** Quorum arithmetic against naive versions, over many random cases (fast-check). */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { VoteResult, committedIndex, hasQuorum, quorumSize, voteResult } from "../src/raft/quorum.js";

const voterSets = fc.uniqueArray(fc.stringMatching(/^n[0-9]{1,2}$/), { minLength: 1, maxLength: 9 });

/** Naive: the largest index that at least a majority has reached. */
function naiveCommitted(voters: string[], acked: Map<string, number>): number {
  let best = 0;
  for (const candidate of voters.map((v) => acked.get(v) ?? 0)) {
    const reached = voters.filter((v) => (acked.get(v) ?? 0) >= candidate).length;
    if (reached > voters.length / 2 && candidate > best) best = candidate;
  }
  return best;
}

function naiveVote(voters: string[], votes: Map<string, boolean>): VoteResult {
  const yes = voters.filter((v) => votes.get(v) === true).length;
  const no = voters.filter((v) => votes.get(v) === false).length;
  if (yes * 2 > voters.length) return VoteResult.Won;
  if (no * 2 >= voters.length) return VoteResult.Lost;
  return VoteResult.Pending;
}

describe("quorum arithmetic", () => {
  it("committedIndex equals the naive majority index (50,000 cases)", () => {
    fc.assert(
      fc.property(voterSets, fc.array(fc.nat(1000), { minLength: 9, maxLength: 9 }), (voters, indexes) => {
        const acked = new Map(voters.map((v, i) => [v, indexes[i]!]));
        expect(committedIndex(voters, (id) => acked.get(id) ?? 0)).toBe(naiveCommitted(voters, acked));
      }),
      { numRuns: 50_000 },
    );
  });

  it("voteResult equals the naive tally (50,000 cases)", () => {
    fc.assert(
      fc.property(voterSets, fc.array(fc.constantFrom(true, false, undefined), { minLength: 9, maxLength: 9 }), (voters, answers) => {
        const votes = new Map<string, boolean>();
        voters.forEach((v, i) => {
          if (answers[i] !== undefined) votes.set(v, answers[i]!);
        });
        expect(voteResult(voters, votes)).toBe(naiveVote(voters, votes));
      }),
      { numRuns: 50_000 },
    );
  });

  it("hasQuorum agrees with quorumSize", () => {
    fc.assert(
      fc.property(voterSets, fc.nat(), (voters, mask) => {
        const active = voters.filter((_, i) => (mask >> i) & 1);
        expect(hasQuorum(voters, (id) => active.includes(id))).toBe(active.length >= quorumSize(voters.length));
      }),
    );
  });

  it("an empty voter set commits nothing", () => {
    expect(committedIndex([], () => 5)).toBe(0);
  });
});
