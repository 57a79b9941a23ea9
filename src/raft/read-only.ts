/**
 * ReadIndex bookkeeping on the leader: each read request records the commit
 * index when it arrived, and is released once a quorum has acknowledged a
 * heartbeat that carried its context (so this member was still the leader
 * after the read arrived). Requests are released in arrival order; one
 * heartbeat round confirms every request queued before it (batching).
 */
import type { Message, NodeId } from "./types.js";

interface ReadIndexStatus {
  readonly request: Message;
  readonly index: number;
  readonly acks: Set<NodeId>;
}

function key(ctx: Uint8Array): string {
  return Buffer.from(ctx.buffer, ctx.byteOffset, ctx.byteLength).toString("latin1");
}

export class ReadOnly {
  private readonly pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  /** Queues a read that arrived when the commit index was `index`. */
  addRequest(index: number, request: Message): void {
    const k = key(request.context!);
    if (this.pending.has(k)) return;
    this.pending.set(k, { request, index, acks: new Set() });
    this.queue.push(k);
  }

  /** Records an acknowledgement of `ctx`; returns who has acked it, if pending. */
  recvAck(from: NodeId, ctx: Uint8Array): ReadonlySet<NodeId> | undefined {
    const status = this.pending.get(key(ctx));
    if (!status) return undefined;
    status.acks.add(from);
    return status.acks;
  }

  /**
   * Releases every request up to and including the one with `ctx`: an ack
   * for a later request confirms leadership for the earlier ones too.
   */
  advance(ctx: Uint8Array): { request: Message; index: number }[] {
    const k = key(ctx);
    const at = this.queue.indexOf(k);
    if (at < 0) return [];
    const released = this.queue.slice(0, at + 1).map((q) => {
      const s = this.pending.get(q)!;
      this.pending.delete(q);
      return { request: s.request, index: s.index };
    });
    this.queue = this.queue.slice(at + 1);
    return released;
  }

  /** The context of the newest pending request, to piggyback on heartbeats. */
  lastPendingContext(): Uint8Array | undefined {
    const last = this.queue[this.queue.length - 1];
    return last === undefined ? undefined : this.pending.get(last)!.request.context;
  }

  size(): number {
    return this.queue.length;
  }

  reset(): void {
    this.pending.clear();
    this.queue = [];
  }
}
