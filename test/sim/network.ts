/**
 * The simulated network between members, on virtual time: it drops,
 * delays, duplicates and reorders messages, now and then holds one back far
 * beyond the election timeout (or replays an old one), cuts links one way
 * or both ways, and tells senders when a link breaks (as a lost connection
 * is reported). Each member reaches it through a SimTransport, the twin of
 * GrpcTransport the real driver is given. All randomness comes from the
 * simulation's seeded generator.
 */
import type { Message, NodeId, SeededRandom } from "../../src/raft/index.js";
import { MessageType } from "../../src/raft/index.js";
import { decodeMessages, encodeMessages } from "../../src/raft-runtime/message-codec.js";
import type { Transport, TransportHandlers } from "../../src/raft-runtime/transport.js";
import type { ProcessClock } from "../../src/time/process-clock.js";
import type { VirtualScheduler } from "../../src/time/virtual-scheduler.js";

export interface NetworkFaults {
  dropRate: number;
  duplicateRate: number;
  /** Each message waits a base latency plus up to this many ms (so messages overtake each other). */
  maxJitterMs: number;
  /** Chance that a message is held back for several election timeouts (a stalled link, a replay). */
  longDelayRate: number;
  longDelayMs: number;
}

export const NO_FAULTS: NetworkFaults = { dropRate: 0, duplicateRate: 0, maxJitterMs: 0, longDelayRate: 0, longDelayMs: 0 };

const BASE_LATENCY_MS = 1;

interface Endpoint {
  readonly id: NodeId;
  readonly clock: ProcessClock;
  readonly handlers: TransportHandlers;
}

export class SimNetwork {
  private readonly endpoints = new Map<NodeId, Endpoint>();
  private readonly cut = new Set<string>();
  faults: NetworkFaults = NO_FAULTS;
  sent = 0;
  delivered = 0;
  longDelayed = 0;

  constructor(
    private readonly world: VirtualScheduler,
    private readonly rng: SeededRandom,
  ) {}

  attach(endpoint: Endpoint): void {
    this.endpoints.set(endpoint.id, endpoint);
  }

  detach(id: NodeId, endpoint: Endpoint | undefined): void {
    if (this.endpoints.get(id) === endpoint) this.endpoints.delete(id);
  }

  /** Whether messages from `from` reach `to` now. */
  connected(from: NodeId, to: NodeId): boolean {
    return !this.cut.has(`${from}>${to}`);
  }

  /** Cuts one direction; with `report`, the sender's transport notices the lost connection. */
  cutLink(from: NodeId, to: NodeId, report = false): void {
    this.cut.add(`${from}>${to}`);
    if (report) this.reportDown(from, to);
  }

  /** Splits the members into two sides that cannot talk (both ways); some see the connections drop. */
  partition(sideA: readonly NodeId[], sideB: readonly NodeId[], reportChance = 0): void {
    for (const a of sideA) {
      for (const b of sideB) {
        this.cutLink(a, b, this.rng.chance(reportChance));
        this.cutLink(b, a, this.rng.chance(reportChance));
      }
    }
  }

  healAll(): void {
    this.cut.clear();
  }

  isPartitioned(): boolean {
    return this.cut.size > 0;
  }

  /** `from`'s connection to `to` broke: its transport reports the peer down. */
  reportDown(from: NodeId, to: NodeId): void {
    const e = this.endpoints.get(from);
    if (e) e.clock.run(() => e.handlers.onPeerDown?.(to));
  }

  send(from: NodeId, messages: readonly Message[]): void {
    for (const m of messages) this.sendOne(from, m);
  }

  private sendOne(from: NodeId, m: Message): void {
    this.sent++;
    const isSnap = m.type === MessageType.Snap;
    const lost = !this.connected(from, m.to) || this.rng.chance(this.faults.dropRate);
    if (lost) {
      if (isSnap) this.snapshotStatus(from, m.to, false);
      return;
    }
    // On the wire: the receiver gets its own copy, as from GrpcTransport.
    const bytes = encodeMessages([m]);
    const copies = !isSnap && this.rng.chance(this.faults.duplicateRate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      let delay = BASE_LATENCY_MS + (this.faults.maxJitterMs > 0 ? this.rng.intBelow(this.faults.maxJitterMs + 1) : 0);
      // Held back far beyond the election timeout: arrives from a leader long deposed.
      if (!isSnap && this.rng.chance(this.faults.longDelayRate)) {
        delay += this.faults.longDelayMs * (0.5 + this.rng.next());
        this.longDelayed++;
      }
      const last = i === copies - 1;
      this.world.setTimeout(() => this.deliver(from, m.to, bytes, isSnap && last), delay);
    }
  }

  private deliver(from: NodeId, to: NodeId, bytes: Uint8Array, snap: boolean): void {
    const target = this.endpoints.get(to);
    const ok = target !== undefined && this.connected(from, to);
    if (snap) this.snapshotStatus(from, to, ok);
    if (!ok) return;
    this.delivered++;
    const [message] = decodeMessages(bytes);
    target.clock.run(() => target.handlers.onMessage(message!));
  }

  private snapshotStatus(from: NodeId, to: NodeId, ok: boolean): void {
    const sender = this.endpoints.get(from);
    if (sender) sender.clock.run(() => sender.handlers.onSnapshotStatus(to, ok));
  }
}

/** One member's transport on the simulated network: what its RaftDriver is given. */
export class SimTransport implements Transport {
  private endpoint: Endpoint | undefined;
  private closed = false;

  constructor(
    private readonly id: NodeId,
    private readonly network: SimNetwork,
    private readonly clock: ProcessClock,
  ) {}

  async start(handlers: TransportHandlers): Promise<void> {
    this.endpoint = { id: this.id, clock: this.clock, handlers };
    this.network.attach(this.endpoint);
  }

  send(messages: readonly Message[]): void {
    if (this.closed) return;
    this.network.send(this.id, messages);
  }

  addPeer(): void {}

  removePeer(): void {}

  async close(): Promise<void> {
    this.closed = true;
    this.network.detach(this.id, this.endpoint);
  }
}
