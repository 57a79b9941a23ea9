/**
 * The newest N audit entries, one per applied command, oldest first. A
 * ring buffer so appending never shifts the array. It is part of the
 * replicated state and of snapshots, so every member (and one restored
 * from a snapshot) shows the same entries; the full history is the Raft
 * log itself until compaction.
 */
import type { AuditEntry } from "./model.js";

export class AuditLog {
  private readonly entries: AuditEntry[] = [];
  /** Position of the oldest entry once the buffer is full. */
  private start = 0;

  constructor(readonly capacity: number) {}

  append(entry: AuditEntry): void {
    if (this.capacity === 0) return;
    if (this.entries.length < this.capacity) {
      this.entries.push(entry);
      return;
    }
    this.entries[this.start] = entry;
    this.start = (this.start + 1) % this.capacity;
  }

  /** Oldest first; at most `limit` of the newest when given. */
  list(limit = this.capacity): AuditEntry[] {
    const ordered = [...this.entries.slice(this.start), ...this.entries.slice(0, this.start)];
    return limit >= ordered.length ? ordered : ordered.slice(ordered.length - limit);
  }

  get size(): number {
    return this.entries.length;
  }
}
