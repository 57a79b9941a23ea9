/**
 * One WebSocket connection in a room: sends the welcome, then turns the
 * client's join / say / ping into room changes and broadcasts. Created by
 * the upgrade handler once the meeting is known to be held here; lives
 * until the socket closes or the room is revoked (LiveRoom.close).
 *
 * Client input never throws out of here: bad frames get an error message
 * and the connection stays; only a flood (rate limit), an oversized frame
 * (ws closes with 1009) or a reader too slow to keep up ends it.
 */
import type { RawData, WebSocket } from "ws";
import type { Logger } from "pino";
import { type ServerMessage, isProblem, parseClientMessage } from "./chat-protocol.js";
import type { LiveRoom, RoomMember } from "./live-room.js";

export interface SessionContext {
  readonly nodeId: string;
  readonly pid: number;
  /** True while the server shuts down: says are refused so the last checkpoint holds them all. */
  readonly readOnly: () => boolean;
  readonly log: Pick<Logger, "debug" | "warn">;
  readonly now?: () => number;
}

/** A client whose unsent data passes this is not reading; it is dropped rather than buffered without end. */
export const MAX_BUFFERED_BYTES = 1024 * 1024;
/** Frames a client may send per second (the page sends one ping every 2 s and what its user types). */
export const MAX_FRAMES_PER_SECOND = 30;
/** Policy violation (RFC 6455): the client sent faster than allowed. */
const CLOSE_POLICY = 1008;

let lastSessionId = 0;

export class ChatSession implements RoomMember {
  readonly sessionId = ++lastSessionId;
  private windowStart = 0;
  private framesInWindow = 0;
  private warned = false;

  constructor(
    private readonly ws: WebSocket,
    private readonly live: LiveRoom,
    private readonly ctx: SessionContext,
  ) {
    ws.on("message", (data, isBinary) => this.received(data, isBinary));
    ws.on("close", () => this.gone());
    // Without a listener an 'error' (e.g. a frame over maxPayload) would be thrown and end the process.
    ws.on("error", (err) => ctx.log.debug({ meetingId: live.meetingId, err: err.message }, "websocket error"));
    live.add(this);
    const room = live.room;
    this.send({
      type: "welcome",
      meetingId: room.meetingId,
      nodeId: ctx.nodeId,
      pid: ctx.pid,
      epoch: room.epoch,
      history: room.history(),
      participants: room.participants(),
    });
  }

  send(message: ServerMessage): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    if (this.ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.ctx.log.warn({ meetingId: this.live.meetingId, sessionId: this.sessionId }, "client does not read; dropping it");
      this.ws.terminate();
      return;
    }
    this.ws.send(JSON.stringify(message));
  }

  close(code: number, reason: string, abrupt = false): void {
    if (abrupt) this.ws.terminate();
    else this.ws.close(code, reason);
  }

  private received(data: RawData, isBinary: boolean): void {
    if (this.live.closed || !this.withinRate()) return;
    const message = parseClientMessage(isBinary ? "" : rawText(data), isBinary);
    if (isProblem(message)) {
      this.send({ type: "error", ...message });
      return;
    }
    const room = this.live.room;
    switch (message.type) {
      case "ping":
        this.send({ type: "pong" });
        return;
      case "join":
        if (room.nameOf(this.sessionId) !== undefined) {
          this.send({ type: "error", error: "already_joined", message: "join may be sent once per connection" });
          return;
        }
        room.join(this.sessionId, message.name);
        this.live.broadcast({ type: "participants", participants: room.participants() });
        return;
      case "say": {
        const name = room.nameOf(this.sessionId);
        if (name === undefined) {
          this.send({ type: "error", error: "not_joined", message: "send join before say" });
          return;
        }
        if (this.ctx.readOnly()) {
          this.send({ type: "error", error: "read_only", message: "this server is shutting down; the meeting is moving", text: message.text });
          return;
        }
        if (this.live.frozen) {
          // Handed over: the final checkpoint is taken; a say now would be lost with the move.
          this.send({ type: "error", error: "moving", message: "the meeting is moving to another server; your message is sent again there", text: message.text });
          return;
        }
        const stored = room.say(name, message.text, (this.ctx.now ?? Date.now)());
        this.live.broadcast({ type: "message", ...stored });
        return;
      }
      default:
        throw new Error(`invariant: unhandled client message ${JSON.stringify(message satisfies never)}`);
    }
  }

  /** A one-second window; the first breach is answered, a client that keeps going is closed. */
  private withinRate(): boolean {
    const now = Date.now();
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.framesInWindow = 0;
      this.warned = false;
    }
    this.framesInWindow += 1;
    if (this.framesInWindow <= MAX_FRAMES_PER_SECOND) return true;
    if (!this.warned) {
      this.warned = true;
      this.send({ type: "error", error: "rate_limited", message: `at most ${MAX_FRAMES_PER_SECOND} messages per second` });
    } else if (this.framesInWindow > 2 * MAX_FRAMES_PER_SECOND) {
      this.ws.close(CLOSE_POLICY, "rate limit");
    }
    return false;
  }

  private gone(): void {
    if (this.live.remove(this) && !this.live.closed) {
      this.live.broadcast({ type: "participants", participants: this.live.room.participants() });
    }
  }
}

function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString("utf8");
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  return Buffer.from(data).toString("utf8");
}
