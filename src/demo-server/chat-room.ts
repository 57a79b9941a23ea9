/**
 * One meeting's chat room: its history and who is in it. Pure state, no
 * sockets (the registry and the sessions own those).
 *
 * The history is bounded twice, by count (500) and by bytes, and the
 * oldest messages go first. The byte bound is what keeps a checkpoint
 * under the coordinator's 256 KiB limit (room-state-codec.ts), and it
 * holds in memory too, so what users see is exactly what survives a move.
 *
 * `version` grows on every change to the history; the registry compares it
 * with the last saved one to skip checkpoints of rooms that did not change.
 * Participants are live connections and are not checkpointed: after a move,
 * people come back by reconnecting.
 */
import type { ChatMessage } from "./chat-protocol.js";

export const MAX_HISTORY_MESSAGES = 500;
/** Sum of messageCost over the history; with the codec's header it stays below 256 KiB. */
export const MAX_HISTORY_BYTES = 224 * 1024;
/** Per-message framing in the checkpoint (array, two string headers, a float64), rounded up. */
const FRAMING_BYTES = 16;

/** What a message weighs in the checkpoint, in bytes. */
export function messageCost(m: ChatMessage): number {
  return Buffer.byteLength(m.from, "utf8") + Buffer.byteLength(m.text, "utf8") + FRAMING_BYTES;
}

export class ChatRoom {
  private readonly lines: ChatMessage[] = [];
  private bytes = 0;
  private changes = 0;
  private readonly people = new Map<number, string>();

  /** `history` (e.g. restored from a checkpoint) is re-bounded: a checkpoint from a bigger limit is cut, not refused. */
  constructor(
    readonly meetingId: string,
    readonly epoch: number,
    history: readonly ChatMessage[] = [],
  ) {
    for (const m of history) this.append(m);
  }

  /** Grows on every change to the history; 0 for a room that never changed. */
  get version(): number {
    return this.changes;
  }

  /** A copy of the history, oldest first. */
  history(): ChatMessage[] {
    return [...this.lines];
  }

  get historyBytes(): number {
    return this.bytes;
  }

  /** Adds a message (the oldest ones go when a bound is passed); returns it as stored. */
  say(from: string, text: string, at: number): ChatMessage {
    const m: ChatMessage = { from, text, at };
    this.append(m);
    this.changes += 1;
    return m;
  }

  /** Adds `sessionId` under `name`; one name per session. */
  join(sessionId: number, name: string): void {
    this.people.set(sessionId, name);
  }

  /** Removes a session; returns whether it had joined. */
  leave(sessionId: number): boolean {
    return this.people.delete(sessionId);
  }

  nameOf(sessionId: number): string | undefined {
    return this.people.get(sessionId);
  }

  /** Names in order of joining (names may repeat: two tabs of one person). */
  participants(): string[] {
    return [...this.people.values()];
  }

  private append(m: ChatMessage): void {
    this.lines.push(m);
    this.bytes += messageCost(m);
    while (this.lines.length > MAX_HISTORY_MESSAGES || this.bytes > MAX_HISTORY_BYTES) {
      this.bytes -= messageCost(this.lines.shift()!);
    }
  }
}
