/**
 * The log as the core sees it: what storage holds (persisted) followed by
 * the unstable tail, plus the commit and apply bookkeeping.
 *
 * Invariant: applied ≤ committed ≤ lastIndex().
 */
import { CompactedError, UnavailableError } from "./errors.js";
import { UnstableLog } from "./log-unstable.js";
import type { TestingBugs } from "./config.js";
import type { Storage } from "./storage.js";
import type { Entry, Snapshot } from "./types.js";
import { entryBytes } from "./types.js";

export class RaftLog {
  readonly unstable: UnstableLog;
  committed: number;
  applied: number;

  constructor(
    readonly storage: Storage,
    /** Upper bound of the bytes of committed entries handed out in one Ready. */
    private readonly maxApplyBytes: number,
  ) {
    const last = storage.lastIndex();
    this.unstable = new UnstableLog(last + 1);
    // A new log starts with committed and applied at the snapshot (the
    // state machine starts from it), not at the log's start: catch-up
    // entries kept before the snapshot are never applied again.
    const snapIndex = Math.max(storage.firstIndex() - 1, storage.snapshot().metadata.index);
    this.committed = snapIndex;
    this.applied = snapIndex;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  lastTerm(): number {
    const t = this.term(this.lastIndex());
    if (t === undefined) throw new Error(`invariant: no term for the last index ${this.lastIndex()}`);
    return t;
  }

  /** The term of entry i, or undefined when compacted away or past the end. */
  term(i: number): number | undefined {
    const dummy = this.firstIndex() - 1;
    if (i < dummy || i > this.lastIndex()) return undefined;
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    try {
      return this.storage.term(i);
    } catch (err) {
      if (err instanceof CompactedError || err instanceof UnavailableError) return undefined;
      throw err;
    }
  }

  matchTerm(i: number, term: number): boolean {
    return this.term(i) === term;
  }

  /**
   * Appends `ents` after (index, logTerm) if the log matches there (the
   * AppendEntries consistency check). Returns the last index of the new
   * entries, or undefined if the log does not match. Only entries that
   * conflict in term are replaced (Raft §5.3): a stale, shorter append must
   * never truncate entries this member has already acknowledged.
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: readonly Entry[], bugs?: TestingBugs): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + ents.length;
    if (bugs?.truncateOnIndex) {
      // The deliberate bug: overwrite from the first uncommitted new entry on,
      // dropping any longer suffix even though nothing conflicts.
      const fresh = ents.filter((e) => e.index > this.committed);
      if (fresh.length > 0) this.append(fresh);
    } else {
      const conflict = this.findConflict(ents);
      if (conflict !== 0) {
        if (conflict <= this.committed) {
          throw new Error(`invariant: entry ${conflict} conflicts with committed entry (committed ${this.committed})`);
        }
        this.append(ents.slice(conflict - index - 1));
      }
    }
    this.commitTo(Math.min(committed, bugs?.commitBeyondLastNew ? this.lastIndex() : lastNew));
    return lastNew;
  }

  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1;
    if (after < this.committed) {
      throw new Error(`invariant: append after ${after} is below committed ${this.committed}`);
    }
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /**
   * The index of the first entry of `ents` whose term differs from ours, or
   * of the first new entry past our end; 0 when all are already present.
   */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The fast-backtracking hint: the largest index ≤ `index` whose term is
   * ≤ `term`. Every entry after it is known not to match the leader's.
   */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex());
    for (; i >= this.firstIndex() - 1; i--) {
      const t = this.term(i);
      if (t === undefined) break;
      if (t <= term) return i;
    }
    return Math.max(i, 0);
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries.slice();
  }

  hasNextCommittedEntries(): boolean {
    return this.committed > this.applied && !this.unstable.snapshot;
  }

  /** Committed entries not yet applied, bounded by maxApplyBytes. */
  nextCommittedEntries(): Entry[] {
    if (!this.hasNextCommittedEntries()) return [];
    const lo = Math.max(this.applied + 1, this.firstIndex());
    return this.slice(lo, this.committed + 1, this.maxApplyBytes);
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  commitTo(toCommit: number): void {
    if (toCommit <= this.committed) return;
    if (toCommit > this.lastIndex()) {
      throw new Error(`invariant: commit ${toCommit} is past the last index ${this.lastIndex()}`);
    }
    this.committed = toCommit;
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    if (i > this.committed || i < this.applied) {
      throw new Error(`invariant: applied ${i} outside [${this.applied}, ${this.committed}]`);
    }
    this.applied = i;
  }

  /** Commits `maxIndex` if it is of `term` (the leader's current term: §5.4.2). */
  maybeCommit(maxIndex: number, term: number, ignoreTermBug = false): boolean {
    if (maxIndex > this.committed && (ignoreTermBug || this.term(maxIndex) === term)) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  /** Whether a candidate's log (lastIndex, lastTerm) is at least as up to date as ours (§5.4.1). */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /** Entries in [lo, hi), stable then unstable, at most maxBytes (at least one). */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo >= hi) return [];
    if (lo < this.firstIndex()) throw new CompactedError(`entries from ${lo}: compacted up to ${this.firstIndex() - 1}`);
    if (hi > this.lastIndex() + 1) throw new UnavailableError(`entries up to ${hi - 1}: last is ${this.lastIndex()}`);
    let out: Entry[] = [];
    const unstableFrom = this.unstable.offset;
    if (lo < unstableFrom) {
      out = this.storage.entries(lo, Math.min(hi, unstableFrom), maxBytes);
      // Storage stopped early because of the byte limit.
      if (out.length < Math.min(hi, unstableFrom) - lo) return out;
    }
    if (hi > unstableFrom) {
      const tail = this.unstable.slice(Math.max(lo, unstableFrom), hi);
      let bytes = 0;
      for (const e of out) bytes += entryBytes(e);
      for (const e of tail) {
        bytes += entryBytes(e);
        if (out.length > 0 && bytes > maxBytes) break;
        out.push(e);
      }
    }
    return out;
  }

  stableTo(index: number, term: number): void {
    this.unstable.stableTo(index, term);
  }

  stableSnapTo(index: number): void {
    this.unstable.stableSnapTo(index);
  }

  /** Replaces the log by a snapshot from the leader. */
  restore(snap: Snapshot): void {
    this.committed = snap.metadata.index;
    this.unstable.restore(snap);
  }
}
