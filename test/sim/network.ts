/**
 * An in-memory network between simulated members: it drops, delays,
 * duplicates and reorders messages, and cuts links one way or both ways.
 * All randomness comes from the simulation's seeded generator.
 */
import type { Message, NodeId } from "../../src/raft/index.js";
import type { SeededRandom } from "../../src/raft/index.js";

export interface NetworkFaults {
  dropRate: number;
  duplicateRate: number;
  /** Max extra delay in ticks; each message waits 1..1+maxDelay ticks. */
  maxDelay: number;
}

interface InFlight {
  readonly deliverAt: number;
  readonly seq: number;
  readonly message: Message;
}

export class SimNetwork {
  private inFlight: InFlight[] = [];
  private readonly cut = new Set<string>();
  private seq = 0;
  faults: NetworkFaults = { dropRate: 0, duplicateRate: 0, maxDelay: 0 };
  sent = 0;
  delivered = 0;

  constructor(private readonly rng: SeededRandom) {}

  /** Whether messages from `from` reach `to` now. */
  connected(from: NodeId, to: NodeId): boolean {
    return !this.cut.has(`${from}>${to}`);
  }

  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}>${to}`);
  }

  /** Splits the members into two sides that cannot talk (both ways). */
  partition(sideA: readonly NodeId[], sideB: readonly NodeId[]): void {
    for (const a of sideA) {
      for (const b of sideB) {
        this.cut.add(`${a}>${b}`);
        this.cut.add(`${b}>${a}`);
      }
    }
  }

  healAll(): void {
    this.cut.clear();
  }

  isPartitioned(): boolean {
    return this.cut.size > 0;
  }

  /** Queues a message; returns false when it was lost at once (dropped or cut). */
  send(m: Message, now: number): boolean {
    this.sent++;
    if (!this.connected(m.from, m.to) || this.rng.chance(this.faults.dropRate)) return false;
    const copies = this.rng.chance(this.faults.duplicateRate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const delay = 1 + (this.faults.maxDelay > 0 ? this.rng.intBelow(this.faults.maxDelay + 1) : 0);
      this.inFlight.push({ deliverAt: now + delay, seq: this.seq++, message: m });
    }
    return true;
  }

  /** Messages due by `now`, shuffled (reordering among them). The caller drops those on links cut meanwhile. */
  takeDue(now: number): Message[] {
    const due: InFlight[] = [];
    const later: InFlight[] = [];
    for (const f of this.inFlight) (f.deliverAt <= now ? due : later).push(f);
    this.inFlight = later;
    for (let i = due.length - 1; i > 0; i--) {
      const j = this.rng.intBelow(i + 1);
      [due[i], due[j]] = [due[j]!, due[i]!];
    }
    this.delivered += due.length;
    return due.map((f) => f.message);
  }


  pending(): number {
    return this.inFlight.length;
  }
}
