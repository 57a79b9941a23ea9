/**
 * The meetings this server holds, as the node agent tells it: `assign` on
 * onAssigned, `revoke` on onRevoked, `stateToSave` for getState. Only held
 * meetings are served; a request for another one may `waitFor` its
 * assignment for a moment, because the gateway proxies a new meeting's
 * first request as soon as GetRoute(create) answers, while the ASSIGNED
 * event is still on its way down the watch stream.
 */
import type { Logger } from "pino";
import type { Checkpoint } from "../node-agent/index.js";
import type { ChatMessage } from "./chat-protocol.js";
import { ChatRoom } from "./chat-room.js";
import { LiveRoom } from "./live-room.js";
import { decodeRoomState } from "./room-state-codec.js";

/** WebSocket close code for "this meeting moved to another server: reconnect". */
export const CLOSE_MOVED = 4001;
/** Waiting requests beyond this are answered at once: a flood of unknown ids must not pile up timers. */
export const MAX_WAITERS = 1000;

type Waiter = (room: LiveRoom | undefined) => void;

export class RoomRegistry {
  private readonly rooms = new Map<string, LiveRoom>();
  private readonly waiters = new Map<string, Set<Waiter>>();
  private waiterCount = 0;
  private frozen = false;

  constructor(private readonly log: Pick<Logger, "info" | "warn" | "debug">) {}

  get size(): number {
    return this.rooms.size;
  }

  ids(): string[] {
    return [...this.rooms.keys()];
  }

  get(meetingId: string): LiveRoom | undefined {
    return this.rooms.get(meetingId);
  }

  /** True once the server is shutting down: rooms are read-only so the last checkpoint is the last word. */
  get readOnly(): boolean {
    return this.frozen;
  }

  freeze(): void {
    this.frozen = true;
  }

  /** onAssigned: starts serving the meeting, from the checkpoint when there is one. */
  assign(meetingId: string, epoch: number, checkpoint: Checkpoint | undefined): LiveRoom {
    const previous = this.rooms.get(meetingId);
    // The agent revokes before it re-assigns; a leftover room would serve a stale tenure.
    if (previous) this.revoke(meetingId);
    let history: ChatMessage[] = [];
    if (checkpoint) {
      try {
        history = decodeRoomState(checkpoint.state);
      } catch (err) {
        this.log.warn({ meetingId, epoch, err }, "checkpoint not restorable; the room starts empty");
      }
    }
    const live = new LiveRoom(new ChatRoom(meetingId, epoch, history));
    this.rooms.set(meetingId, live);
    this.log.info({ meetingId, epoch, restoredMessages: live.room.history().length, fromNode: checkpoint?.nodeId }, "serving meeting");
    this.wake(meetingId, live);
    return live;
  }

  /** onRevoked: closes the meeting's sockets with 4001 "moved" (clients reconnect through the gateway) and drops the room. */
  revoke(meetingId: string): void {
    const live = this.rooms.get(meetingId);
    if (!live) return;
    this.rooms.delete(meetingId);
    live.close(CLOSE_MOVED, "moved");
    this.log.info({ meetingId, epoch: live.epoch }, "meeting left this server");
  }

  /**
   * onHandover: the room takes no more messages, and its whole history is
   * the final checkpoint (even when unchanged since the last save: the
   * new owner must get exactly this). Its sockets stay open until the
   * REVOKED that follows closes them with 4001 "moved".
   */
  handOver(meetingId: string): Uint8Array {
    const live = this.rooms.get(meetingId);
    if (!live) throw new Error(`meeting ${meetingId} is not served here`);
    this.log.info({ meetingId, epoch: live.epoch, messages: live.room.history().length }, "handing the meeting over: no more messages here");
    return live.freeze();
  }

  /** People connected to the rooms served here, for the heartbeats' load figures. */
  participants(): number {
    let n = 0;
    for (const live of this.rooms.values()) n += live.memberCount;
    return n;
  }

  /** getState for the agent; undefined when not held or unchanged since the last save. */
  stateToSave(meetingId: string): Uint8Array | undefined {
    return this.rooms.get(meetingId)?.stateToSave();
  }

  /** The agent's 'checkpoint' event: a save of this tenure committed. */
  saved(meetingId: string, epoch: number): void {
    const live = this.rooms.get(meetingId);
    if (live && live.epoch === epoch) live.saved();
  }

  /**
   * The room when held now, or once assigned within `timeoutMs`; undefined
   * after the wait (or at once when too many are waiting). `cancel` ends
   * the wait early, e.g. when the client hangs up.
   */
  waitFor(meetingId: string, timeoutMs: number, cancel?: AbortSignal): Promise<LiveRoom | undefined> {
    const held = this.rooms.get(meetingId);
    if (held || timeoutMs <= 0 || this.waiterCount >= MAX_WAITERS || cancel?.aborted) return Promise.resolve(held);
    return new Promise((resolve) => {
      const done: Waiter = (room) => {
        clearTimeout(timer);
        cancel?.removeEventListener("abort", onAbort);
        const set = this.waiters.get(meetingId);
        if (set?.delete(done)) this.waiterCount -= 1;
        if (set?.size === 0) this.waiters.delete(meetingId);
        resolve(room);
      };
      const onAbort = (): void => done(undefined);
      const timer = setTimeout(() => done(undefined), timeoutMs);
      cancel?.addEventListener("abort", onAbort, { once: true });
      let set = this.waiters.get(meetingId);
      if (!set) this.waiters.set(meetingId, (set = new Set()));
      set.add(done);
      this.waiterCount += 1;
    });
  }

  /** Closes every room (the server stops); waiters get undefined. */
  closeAll(code: number, reason: string, abrupt = false): void {
    for (const live of this.rooms.values()) live.close(code, reason, abrupt);
    this.rooms.clear();
    for (const id of [...this.waiters.keys()]) this.wake(id, undefined);
  }

  private wake(meetingId: string, room: LiveRoom | undefined): void {
    const set = this.waiters.get(meetingId);
    if (!set) return;
    for (const w of [...set]) w(room);
  }
}
