/**
 * What a transport's send() collected in one turn of the event loop,
 * grouped per peer and handed over together at the end of the turn: the
 * messages of one Ready (and of every Ready of that turn) leave as one
 * batch per peer, in send order. Both transports use it.
 */
import type { Message, NodeId } from "../raft/types.js";

export class PeerOutbox {
  private pending = new Map<NodeId, Message[]>();
  private scheduled = false;

  /** `deliver` gets each peer's messages of the turn, in send order. */
  constructor(private readonly deliver: (peer: NodeId, messages: Message[]) => void) {}

  add(messages: readonly Message[]): void {
    for (const m of messages) {
      const forPeer = this.pending.get(m.to);
      if (forPeer) forPeer.push(m);
      else this.pending.set(m.to, [m]);
    }
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  /** Takes everything not yet handed over (on close: the caller reports Snaps that never left). */
  takeAll(): Map<NodeId, Message[]> {
    const pending = this.pending;
    this.pending = new Map();
    return pending;
  }

  private flush(): void {
    this.scheduled = false;
    for (const [peer, messages] of this.takeAll()) this.deliver(peer, messages);
  }
}
