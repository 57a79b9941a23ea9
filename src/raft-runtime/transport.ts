/**
 * How a member's driver talks to its peers. Implementations: GrpcTransport
 * (one long-lived stream per peer, snapshots chunked on their own stream)
 * and MemoryTransport (its in-memory twin, for driver tests).
 *
 * Contract:
 *  - send() never blocks and never throws for an unreachable peer: messages
 *    to a peer that cannot take them are dropped (Raft retries) and the peer
 *    is reported through onUnreachable;
 *  - messages to one peer arrive in the order they were sent, or not at all;
 *  - a Snap message is carried separately (chunked); its outcome is reported
 *    through onSnapshotStatus, exactly once per Snap message sent;
 *  - a slow or dead peer never delays messages to the others.
 */
import type { Message, NodeId } from "../raft/types.js";

export interface TransportHandlers {
  /** A message arrived from a peer (already decoded; validate before stepping). */
  onMessage(m: Message): void;
  /** A peer could not be reached: the driver tells the core (reportUnreachable). */
  onUnreachable(peer: NodeId): void;
  /**
   * The connection to a peer was lost (refused, reset, dropped), as when its
   * process died; not for a peer that is merely slow (reportPeerDown).
   */
  onPeerDown?(peer: NodeId): void;
  /** A snapshot send finished: delivered (ok) or failed. */
  onSnapshotStatus(peer: NodeId, ok: boolean): void;
}

export interface Transport {
  /** Starts delivering incoming messages to `handlers`. Call once, before send(). */
  start(handlers: TransportHandlers): Promise<void>;
  send(messages: readonly Message[]): void;
  /** Adds or updates a peer's address (membership change). */
  addPeer(id: NodeId, address: string): void;
  removePeer(id: NodeId): void;
  /** Stops sending and receiving; pending messages are dropped. */
  close(): Promise<void>;
}
