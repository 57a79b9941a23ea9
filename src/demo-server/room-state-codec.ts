/**
 * A room's checkpoint: what `getState` hands to the node agent and what
 * `onAssigned` gets back on the node the meeting moves to.
 *
 * Format (msgpackr): { v: 1, history: [[from, text, at], ...] }, oldest
 * first. Arrays instead of objects keep the per-message framing at a fixed
 * 16 bytes at most, which ChatRoom's byte bound counts on to stay under the
 * coordinator's 256 KiB limit. Participants are not saved (they are live
 * connections).
 *
 * Decoding checks everything: a checkpoint may come from another version of
 * this server, and a bad one must cost the history, not the process.
 */
import { Packr } from "msgpackr";
import type { ChatMessage } from "./chat-protocol.js";
import { MAX_NAME_CHARS, MAX_TEXT_CHARS } from "./chat-protocol.js";
import { RoomStateError } from "./errors.js";

export const ROOM_STATE_VERSION = 1;
/** The coordinator's default limit on a checkpoint (API.md). */
export const MAX_ROOM_STATE_BYTES = 256 * 1024;

// Plain msgpack: no record extension, so any msgpack reader can inspect a checkpoint.
const packr = new Packr({ useRecords: false, moreTypes: false });

export function encodeRoomState(history: readonly ChatMessage[]): Uint8Array {
  const bytes = packr.pack({ v: ROOM_STATE_VERSION, history: history.map((m) => [m.from, m.text, m.at]) });
  if (bytes.length > MAX_ROOM_STATE_BYTES) {
    // ChatRoom's bounds make this impossible; sending it would only be refused.
    throw new Error(`invariant: room state is ${bytes.length} bytes, over ${MAX_ROOM_STATE_BYTES}`);
  }
  return bytes;
}

/** The history saved in `bytes`; throws RoomStateError naming what is wrong. */
export function decodeRoomState(bytes: Uint8Array): ChatMessage[] {
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch (err) {
    throw new RoomStateError("room state is not msgpack", { cause: err });
  }
  if (value === null || typeof value !== "object") throw new RoomStateError("room state must be a map");
  const state = value as Record<string, unknown>;
  if (state["v"] !== ROOM_STATE_VERSION) throw new RoomStateError(`room state v must be ${ROOM_STATE_VERSION}, got ${String(state["v"])}`);
  const history = state["history"];
  if (!Array.isArray(history)) throw new RoomStateError("room state history must be an array");
  return history.map((entry: unknown, i) => {
    if (!Array.isArray(entry) || entry.length !== 3) throw new RoomStateError(`room state history[${i}] must be [from, text, at]`);
    const [from, text, at] = entry as unknown[];
    if (typeof from !== "string" || from.length > MAX_NAME_CHARS) {
      throw new RoomStateError(`room state history[${i}].from must be a string of at most ${MAX_NAME_CHARS} characters`);
    }
    if (typeof text !== "string" || text.length > MAX_TEXT_CHARS) {
      throw new RoomStateError(`room state history[${i}].text must be a string of at most ${MAX_TEXT_CHARS} characters`);
    }
    if (typeof at !== "number" || !Number.isFinite(at)) throw new RoomStateError(`room state history[${i}].at must be a finite number`);
    return { from, text, at };
  });
}
