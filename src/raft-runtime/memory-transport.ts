/**
 * The in-memory twin of GrpcTransport, for driver tests: members attached
 * to one MemoryHub reach each other through it, with the same contract
 * (transport.ts): send() never blocks or throws, messages to a peer arrive
 * in order or not at all, a peer that cannot be reached is reported, and
 * each Snap message gets exactly one snapshot status.
 *
 * Every message goes through message-codec.ts on its way, as on the wire:
 * the receiver gets its own copy, and a field the codec would lose is lost
 * here too. Delivery is always asynchronous (next turn of the event loop,
 * or after the hub's latency); the hub's partitions apply both when a
 * message is sent and when it would arrive, like a real network.
 */
import { decodeMessages, encodeMessages } from "./message-codec.js";
import { PeerOutbox } from "./peer-outbox.js";
import type { Transport, TransportHandlers } from "./transport.js";
import type { Message, NodeId } from "../raft/types.js";
import { MessageType } from "../raft/types.js";

export interface MemoryHubOptions {
  /** Delivery delay in ms, for every link or per link. Default 0: the next turn of the event loop. */
  readonly latencyMs?: number | ((from: NodeId, to: NodeId) => number);
}

/** The network of a test: which members are attached, and which pairs are cut apart. */
export class MemoryHub {
  private readonly endpoints = new Map<NodeId, MemoryTransport>();
  private readonly cuts = new Set<string>();
  private readonly latency: (from: NodeId, to: NodeId) => number;

  constructor(options: MemoryHubOptions = {}) {
    const latency = options.latencyMs ?? 0;
    this.latency = typeof latency === "number" ? () => latency : latency;
  }

  /** Cuts a and b apart, both ways, until heal(). Messages already on their way are lost too. */
  partition(a: NodeId, b: NodeId): void {
    this.cuts.add(pairKey(a, b));
  }

  /** Reconnects a and b, or every pair if called without arguments. */
  heal(a?: NodeId, b?: NodeId): void {
    if (a === undefined || b === undefined) this.cuts.clear();
    else this.cuts.delete(pairKey(a, b));
  }

  /** Whether a message sent now from `from` to `to` could arrive. */
  canReach(from: NodeId, to: NodeId): boolean {
    return this.endpoints.has(to) && !this.cuts.has(pairKey(from, to));
  }

  /** For MemoryTransport.start(). */
  attach(id: NodeId, endpoint: MemoryTransport): void {
    if (this.endpoints.has(id)) throw new Error(`member ${id} is already attached to this hub`);
    this.endpoints.set(id, endpoint);
  }

  /** For MemoryTransport.close(). */
  detach(id: NodeId, endpoint: MemoryTransport): void {
    if (this.endpoints.get(id) === endpoint) this.endpoints.delete(id);
  }

  /** For MemoryTransport: the attached member `id`, if it can be reached from `from` now. */
  reachableEndpoint(from: NodeId, id: NodeId): MemoryTransport | undefined {
    return this.canReach(from, id) ? this.endpoints.get(id) : undefined;
  }

  delayMs(from: NodeId, to: NodeId): number {
    return Math.max(0, this.latency(from, to));
  }
}

function pairKey(a: NodeId, b: NodeId): string {
  return a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`;
}

export interface MemoryTransportOptions {
  readonly selfId: NodeId;
  readonly hub: MemoryHub;
  /** The members this one may send to (addresses do not matter in memory). */
  readonly peers: Iterable<NodeId>;
}

export class MemoryTransport implements Transport {
  readonly selfId: NodeId;
  private readonly hub: MemoryHub;
  private readonly peers = new Set<NodeId>();
  private readonly links = new Map<NodeId, MemoryLink>();
  private handlers: TransportHandlers | undefined;
  private started = false;
  private closed = false;
  private readonly outbox = new PeerOutbox((peer, messages) => this.deliver(peer, messages));

  constructor(options: MemoryTransportOptions) {
    this.selfId = options.selfId;
    this.hub = options.hub;
    for (const id of options.peers) this.addPeer(id, "");
  }

  async start(handlers: TransportHandlers): Promise<void> {
    if (this.started) throw new Error("MemoryTransport.start() may be called only once");
    this.started = true;
    this.handlers = handlers;
    this.hub.attach(this.selfId, this);
  }

  send(messages: readonly Message[]): void {
    if (this.closed) return;
    this.outbox.add(messages);
  }

  addPeer(id: NodeId, _address: string): void {
    if (id !== this.selfId) this.peers.add(id);
  }

  removePeer(id: NodeId): void {
    this.peers.delete(id);
    this.links.get(id)?.cancel();
    this.links.delete(id);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.hub.detach(this.selfId, this);
    // Each Snap message gets its status, even one that never left.
    for (const [peer, messages] of this.outbox.takeAll()) {
      for (const m of messages) if (m.type === MessageType.Snap) this.reportSnapshot(peer, false);
    }
    for (const link of this.links.values()) link.cancel();
    this.links.clear();
    this.handlers = undefined;
  }

  /** For MemoryLink: hands an arrived message to this member; false if it is not listening. */
  receive(m: Message): boolean {
    if (!this.handlers) return false;
    this.handlers.onMessage(m);
    return true;
  }

  /** For MemoryLink. */
  reportUnreachable(peer: NodeId): void {
    this.handlers?.onUnreachable(peer);
  }

  /** For MemoryLink. */
  reportSnapshot(peer: NodeId, ok: boolean): void {
    this.handlers?.onSnapshotStatus(peer, ok);
  }

  private deliver(peer: NodeId, messages: Message[]): void {
    if (this.closed) return;
    if (!this.peers.has(peer) || !this.hub.canReach(this.selfId, peer)) {
      dropAndReport(this, peer, messages);
      return;
    }
    let link = this.links.get(peer);
    if (!link) {
      link = new MemoryLink(this, peer, this.hub);
      this.links.set(peer, link);
    }
    link.enqueue(messages);
  }
}

/** Reports messages that could not be carried: one status per Snap, one unreachable for the rest. */
function dropAndReport(sender: MemoryTransport, peer: NodeId, messages: readonly Message[]): void {
  let others = false;
  for (const m of messages) {
    if (m.type === MessageType.Snap) sender.reportSnapshot(peer, false);
    else others = true;
  }
  if (others) sender.reportUnreachable(peer);
}

/** Something on its way: a batch of ordinary messages, or one Snap message (carried apart, as over gRPC). */
interface InFlight {
  readonly arrivesAt: number;
  readonly bytes: Uint8Array;
  readonly isSnapshot: boolean;
}

/** The one-way link from a sender to one peer: a FIFO whose arrival times never decrease, so order holds whatever the latency. */
class MemoryLink {
  private queue: InFlight[] = [];
  private lastArrival = 0;
  /** Cancels the pending delivery wake-up, if one is set. */
  private cancelWakeUp: (() => void) | undefined;

  constructor(
    private readonly sender: MemoryTransport,
    private readonly peer: NodeId,
    private readonly hub: MemoryHub,
  ) {}

  enqueue(messages: readonly Message[]): void {
    const now = performance.now();
    this.lastArrival = Math.max(this.lastArrival, now + this.hub.delayMs(this.sender.selfId, this.peer));
    let batch: Message[] = [];
    const push = (bytes: Uint8Array, isSnapshot: boolean) => this.queue.push({ arrivesAt: this.lastArrival, bytes, isSnapshot });
    for (const m of messages) {
      if (m.type !== MessageType.Snap) {
        batch.push(m);
        continue;
      }
      if (batch.length > 0) push(encodeMessages(batch), false);
      batch = [];
      push(encodeMessages([m]), true);
    }
    if (batch.length > 0) push(encodeMessages(batch), false);
    this.schedule();
  }

  /** Drops everything on its way; each Snap among it fails. */
  cancel(): void {
    this.cancelWakeUp?.();
    this.cancelWakeUp = undefined;
    for (const item of this.queue) if (item.isSnapshot) this.sender.reportSnapshot(this.peer, false);
    this.queue = [];
  }

  private schedule(): void {
    if (this.cancelWakeUp || this.queue.length === 0) return;
    const wait = this.queue[0]!.arrivesAt - performance.now();
    if (wait <= 0) {
      const immediate = setImmediate(() => this.deliver());
      this.cancelWakeUp = () => clearImmediate(immediate);
    } else {
      const timeout = setTimeout(() => this.deliver(), wait);
      this.cancelWakeUp = () => clearTimeout(timeout);
    }
  }

  private deliver(): void {
    this.cancelWakeUp = undefined;
    const now = performance.now();
    let due = 0;
    while (due < this.queue.length && this.queue[due]!.arrivesAt <= now) due++;
    const arrived = this.queue.splice(0, due);
    this.schedule();
    for (const item of arrived) {
      const messages = decodeMessages(item.bytes);
      const receiver = this.hub.reachableEndpoint(this.sender.selfId, this.peer);
      const delivered = receiver !== undefined && messages.every((m) => receiver.receive(m));
      if (item.isSnapshot) this.sender.reportSnapshot(this.peer, delivered);
      else if (!delivered) this.sender.reportUnreachable(this.peer);
    }
  }
}
