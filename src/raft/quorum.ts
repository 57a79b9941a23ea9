/**
 * Majority arithmetic as pure functions over a set of voters. A learner is
 * never in `voters`, so it never counts towards a quorum.
 */
import type { NodeId } from "./types.js";

export enum VoteResult {
  Pending = "pending",
  Won = "won",
  Lost = "lost",
}

/** The number of voters that make a majority of `size`. */
export function quorumSize(size: number): number {
  return Math.floor(size / 2) + 1;
}

/**
 * The largest index that a majority of voters has acknowledged (is at least
 * at). `acked` returns the acknowledged index of a voter, 0 when unknown.
 * An empty voter set commits nothing.
 */
export function committedIndex(voters: readonly NodeId[], acked: (id: NodeId) => number): number {
  const n = voters.length;
  if (n === 0) return 0;
  // Three voters is by far the common case: pick the middle of three
  // without allocating.
  if (n === 3) {
    const a = acked(voters[0]!);
    const b = acked(voters[1]!);
    const c = acked(voters[2]!);
    return Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));
  }
  const indexes = new Array<number>(n);
  for (let i = 0; i < n; i++) indexes[i] = acked(voters[i]!);
  indexes.sort((x, y) => y - x);
  // Descending order: the quorum-th largest is acknowledged by a majority.
  return indexes[quorumSize(n) - 1]!;
}

/**
 * The outcome of an election given the votes received so far (`votes` maps a
 * voter to its answer; voters absent from it have not answered yet).
 */
export function voteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.length === 0) return VoteResult.Won;
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  const q = quorumSize(voters.length);
  if (granted >= q) return VoteResult.Won;
  if (granted + missing >= q) return VoteResult.Pending;
  return VoteResult.Lost;
}

/** Whether the voters marked active by `isActive` form a majority. */
export function hasQuorum(voters: readonly NodeId[], isActive: (id: NodeId) => boolean): boolean {
  let active = 0;
  for (const id of voters) if (isActive(id)) active++;
  return active >= quorumSize(voters.length);
}
