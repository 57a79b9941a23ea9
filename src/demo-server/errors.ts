/**
 * Every error the demo meeting server throws to its caller, in one place.
 * Client mistakes (a bad id, a bad WebSocket message) are never thrown:
 * they become JSON answers at the edge (http-answers.ts, chat-session.ts).
 */
export abstract class DemoServerError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A config key broke a rule; the message names the key, the rule and the value. */
export class DemoServerConfigError extends DemoServerError {
  readonly code = "CONFIG";
}

/** A checkpoint's bytes are not a room state this server can restore. */
export class RoomStateError extends DemoServerError {
  readonly code = "ROOM_STATE";
}
