/** Records what a transport reports to its driver: shared by the transport tests. */
import type { TransportHandlers } from "../../src/raft-runtime/transport.js";
import type { Message, NodeId } from "../../src/raft/types.js";

export class Recorder implements TransportHandlers {
  readonly messages: Message[] = [];
  readonly unreachable: NodeId[] = [];
  readonly snapshotStatus: Array<[NodeId, boolean]> = [];
  onMessage(m: Message): void {
    this.messages.push(m);
  }
  onUnreachable(peer: NodeId): void {
    this.unreachable.push(peer);
  }
  onSnapshotStatus(peer: NodeId, ok: boolean): void {
    this.snapshotStatus.push([peer, ok]);
  }
  /** The messages that came from `peer`, in arrival order. */
  from(peer: NodeId): Message[] {
    return this.messages.filter((m) => m.from === peer);
  }
}
