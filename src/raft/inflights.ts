/**
 * The window of append messages sent to one follower and not yet
 * acknowledged: it bounds both their count and their bytes (flow control),
 * so a slow follower cannot make the leader buffer without limit.
 */
export class Inflights {
  // Ring buffer of (last index of the append, bytes of its entries).
  private readonly indexes: number[];
  private readonly sizes: number[];
  private start = 0;
  private count = 0;
  private bytes = 0;

  constructor(
    private readonly maxCount: number,
    private readonly maxBytes: number,
  ) {
    this.indexes = new Array<number>(maxCount);
    this.sizes = new Array<number>(maxCount);
  }

  /** Records an append whose last entry is `index`. Caller checks `full()` first. */
  add(index: number, bytes: number): void {
    if (this.count >= this.maxCount) throw new Error("invariant: add to a full inflights window");
    const slot = (this.start + this.count) % this.maxCount;
    this.indexes[slot] = index;
    this.sizes[slot] = bytes;
    this.count++;
    this.bytes += bytes;
  }

  /** Frees every append whose last index is ≤ `index` (they were acknowledged). */
  freeLE(index: number): void {
    while (this.count > 0 && this.indexes[this.start]! <= index) {
      this.bytes -= this.sizes[this.start]!;
      this.start = (this.start + 1) % this.maxCount;
      this.count--;
    }
    if (this.count === 0) this.start = 0;
  }

  /** Frees the oldest append (used when a heartbeat response proves liveness). */
  freeFirstOne(): void {
    if (this.count === 0) return;
    this.freeLE(this.indexes[this.start]!);
  }

  full(): boolean {
    return this.count >= this.maxCount || (this.maxBytes > 0 && this.bytes >= this.maxBytes);
  }

  size(): number {
    return this.count;
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
    this.bytes = 0;
  }
}
