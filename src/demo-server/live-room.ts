/**
 * A held meeting: its ChatRoom, the connections in it, and what of it has
 * been checkpointed. Created by RoomRegistry on ASSIGNED, closed on
 * REVOKED (or when the server stops); sessions keep a reference and check
 * `closed` before touching it.
 */
import type { ServerMessage } from "./chat-protocol.js";
import { ChatRoom } from "./chat-room.js";
import { encodeRoomState } from "./room-state-codec.js";

/** One connection in a room, as the room sees it (chat-session.ts implements it). */
export interface RoomMember {
  readonly sessionId: number;
  send(message: ServerMessage): void;
  /** Closes with a WebSocket close code; `abrupt` drops the TCP connection without a close frame. */
  close(code: number, reason: string, abrupt?: boolean): void;
}

export class LiveRoom {
  readonly room: ChatRoom;
  private readonly members = new Set<RoomMember>();
  private savedVersion = 0;
  private sendingVersion = 0;
  private isClosed = false;
  private isFrozen = false;

  constructor(room: ChatRoom) {
    this.room = room;
  }

  get meetingId(): string {
    return this.room.meetingId;
  }
  get epoch(): number {
    return this.room.epoch;
  }
  get closed(): boolean {
    return this.isClosed;
  }
  /** Handed over (a planned move): the history takes no more messages. */
  get frozen(): boolean {
    return this.isFrozen;
  }

  /** A planned move: no more writes; the whole history, as the final checkpoint. */
  freeze(): Uint8Array {
    this.isFrozen = true;
    return encodeRoomState(this.room.history());
  }
  get memberCount(): number {
    return this.members.size;
  }

  add(member: RoomMember): void {
    if (!this.isClosed) this.members.add(member);
  }

  /** Removes the member and its name; true when the participant list changed. */
  remove(member: RoomMember): boolean {
    this.members.delete(member);
    return this.room.leave(member.sessionId);
  }

  broadcast(message: ServerMessage): void {
    for (const m of this.members) m.send(message);
  }

  /**
   * The state to checkpoint now, or undefined when the history has not
   * changed since the last acknowledged save (an idle room costs no Raft
   * write). The agent has at most one save of a meeting in flight, so the
   * version read here is the one `saved` acknowledges.
   */
  stateToSave(): Uint8Array | undefined {
    if (this.room.version === this.savedVersion) return undefined;
    this.sendingVersion = this.room.version;
    return encodeRoomState(this.room.history());
  }

  /** The save of the state last returned by `stateToSave` committed. */
  saved(): void {
    this.savedVersion = this.sendingVersion;
  }

  /** Closes every connection and refuses new ones. Idempotent. */
  close(code: number, reason: string, abrupt = false): void {
    this.isClosed = true;
    for (const m of [...this.members]) m.close(code, reason, abrupt);
    this.members.clear();
  }
}
