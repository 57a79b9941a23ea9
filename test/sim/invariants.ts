/**
 * The safety properties of Raft, checked as the simulation runs:
 *  - election safety: at most one leader per term;
 *  - log matching: entries with the same index and term are identical and
 *    follow the same previous term;
 *  - leader completeness: a leader of term T holds every entry committed in
 *    a term before T (an entry committed by a leader of term U is in the log
 *    of every leader of a term above U; a stale leader of a lower term,
 *    elected late, need not have it);
 *  - state machine safety: no two members apply different entries at an index;
 *  - the commit rule (§5.4.2): a leader moves its commit index only onto an
 *    entry of its own term (earlier ones commit indirectly, never by count).
 * Each breach is recorded with the step at which it was seen.
 */
import type { Entry, NodeId, RawNode } from "../../src/raft/index.js";

function fingerprint(e: Entry): string {
  return `${e.type}:${Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength).toString("latin1")}`;
}

export class SafetyChecker {
  readonly violations: string[] = [];
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** Entries by "index:term": what they hold and the term before them. */
  private readonly entriesSeen = new Map<string, { fp: string; prevTerm: number | undefined }>();
  /** Every index any member applied: the one true committed sequence. */
  readonly applied = new Map<number, { term: number; fp: string }>();
  maxApplied = 0;
  private readonly leaderCommit = new Map<NodeId, { term: number; commit: number }>();
  /** index → the entry's term and the lowest term of a leader seen committing it. */
  private readonly committed = new Map<number, { term: number; commitTerm: number }>();

  constructor(private readonly now: () => number) {}

  private violation(text: string): void {
    if (this.violations.length < 20) this.violations.push(`step ${this.now()}: ${text}`);
  }

  /** Call whenever a member is seen as leader of `term`. */
  noteLeader(id: NodeId, term: number, node: RawNode): void {
    this.noteLeaderCommit(id, term, node);
    const known = this.leaderOfTerm.get(term);
    if (known === id) return;
    if (known !== undefined) {
      this.violation(`election safety: ${known} and ${id} both lead term ${term}`);
      return;
    }
    this.leaderOfTerm.set(term, id);
    // Leader completeness: every entry committed in an earlier term is in its log.
    const log = node.raft.log;
    const compactedUpTo = log.firstIndex() - 1;
    for (const [index, c] of this.committed) {
      if (c.commitTerm >= term || index <= compactedUpTo) continue;
      const ours = index <= log.lastIndex() ? log.term(index) : undefined;
      if (ours !== c.term) {
        this.violation(`leader completeness: ${id} leads term ${term} with ${ours === undefined ? "no entry" : `term ${ours}`} at ${index}, committed in term ${c.commitTerm} with term ${c.term}`);
        return;
      }
    }
  }

  /** Call whenever a leader may have moved its commit index. */
  noteLeaderCommit(id: NodeId, term: number, node: RawNode): void {
    const commit = node.raft.log.committed;
    const before = this.leaderCommit.get(id);
    this.leaderCommit.set(id, { term, commit });
    if (!before || before.term !== term || commit <= before.commit) return;
    for (let i = before.commit + 1; i <= commit; i++) {
      const entryTerm = i < node.raft.log.firstIndex() || this.committed.has(i) ? undefined : node.raft.log.term(i);
      if (entryTerm !== undefined) this.committed.set(i, { term: entryTerm, commitTerm: term });
    }
    const committedTerm = node.raft.log.term(commit);
    if (committedTerm !== term) {
      this.violation(`commit rule: leader ${id} of term ${term} committed index ${commit} of term ${committedTerm} by counting`);
    }
  }

  /** Call for each entry a member persisted, with the term of the entry before it. */
  notePersisted(id: NodeId, e: Entry, prevTerm: number | undefined): void {
    const key = `${e.index}:${e.term}`;
    const fp = fingerprint(e);
    const seen = this.entriesSeen.get(key);
    if (!seen) {
      this.entriesSeen.set(key, { fp, prevTerm });
      return;
    }
    if (seen.fp !== fp) this.violation(`log matching: ${id} holds a different entry at ${key}`);
    else if (seen.prevTerm !== undefined && prevTerm !== undefined && seen.prevTerm !== prevTerm) {
      this.violation(`log matching: ${id} has term ${prevTerm} before ${key}, another member ${seen.prevTerm}`);
    }
  }

  /** Call for each committed entry a member applies. */
  noteApplied(id: NodeId, e: Entry): void {
    const fp = fingerprint(e);
    const seen = this.applied.get(e.index);
    if (!seen) {
      this.applied.set(e.index, { term: e.term, fp });
      if (e.index > this.maxApplied) this.maxApplied = e.index;
      return;
    }
    if (seen.term !== e.term || seen.fp !== fp) {
      this.violation(`state machine safety: ${id} applied term ${e.term} at ${e.index}, another member term ${seen.term}`);
    }
  }

  note(text: string): void {
    this.violation(text);
  }
}
