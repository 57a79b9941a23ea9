/**
 * The chat room's WebSocket protocol: JSON text frames, one message each.
 *
 *   client → server  {type:"join", name}   once, before "say"
 *                    {type:"say", text}
 *                    {type:"ping"}          the page's liveness probe (every 2 s)
 *   server → client  {type:"welcome", meetingId, nodeId, pid, epoch, history, participants}
 *                                           first, on every connection
 *                    {type:"message", from, text, at}
 *                    {type:"participants", participants}
 *                    {type:"pong"}
 *                    {type:"error", error, message, text?}   the connection stays open;
 *                                           text: the refused say's text when it was refused
 *                                           because the meeting is moving (read_only, moving):
 *                                           the page sends it again once reconnected
 *
 * `parseClientMessage` is the only door for client input: whatever arrives
 * (binary, not JSON, wrong shapes, huge strings) comes out as a typed
 * message or a ProtocolProblem, never a throw.
 */

/** Longest participant name, in UTF-16 code units (what a browser's maxlength counts). */
export const MAX_NAME_CHARS = 40;
/** Longest chat text, in UTF-16 code units. */
export const MAX_TEXT_CHARS = 2000;
/** Largest WebSocket message accepted; bigger ones close the socket (1009). */
export const MAX_WS_MESSAGE_BYTES = 16 * 1024;

/** One line of a room's history, as sent and as checkpointed. */
export interface ChatMessage {
  readonly from: string;
  readonly text: string;
  /** Milliseconds since the epoch, on the server that accepted it. */
  readonly at: number;
}

export type ClientMessage =
  | { readonly type: "join"; readonly name: string }
  | { readonly type: "say"; readonly text: string }
  | { readonly type: "ping" };

export type ServerMessage =
  | {
      readonly type: "welcome";
      readonly meetingId: string;
      readonly nodeId: string;
      readonly pid: number;
      readonly epoch: number;
      readonly history: readonly ChatMessage[];
      readonly participants: readonly string[];
    }
  | ({ readonly type: "message" } & ChatMessage)
  | { readonly type: "participants"; readonly participants: readonly string[] }
  | { readonly type: "pong" }
  | { readonly type: "error"; readonly error: ErrorCode; readonly message: string; readonly text?: string };

export type ErrorCode = "bad_message" | "not_joined" | "already_joined" | "read_only" | "moving" | "rate_limited";

export interface ProtocolProblem {
  readonly error: ErrorCode;
  readonly message: string;
}

// C0/C1 controls break the page's layout and logs; tab and newline are fine in a chat text.
const NAME_FORBIDDEN = /[\u0000-\u001f\u007f-\u009f]/;
const TEXT_FORBIDDEN = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

function problem(message: string): ProtocolProblem {
  return { error: "bad_message", message };
}

/** Checks a join name: trimmed, 1..40 characters, no control characters. */
export function checkName(raw: unknown): string | ProtocolProblem {
  if (typeof raw !== "string") return problem("join.name must be a string");
  const name = raw.trim();
  if (name.length < 1 || name.length > MAX_NAME_CHARS) return problem(`join.name must be 1..${MAX_NAME_CHARS} characters after trimming, got ${name.length}`);
  if (NAME_FORBIDDEN.test(name)) return problem("join.name must not contain control characters");
  return name;
}

/** Checks a chat text: 1..2000 characters, not only spaces, no control characters but tab and newline. */
export function checkText(raw: unknown): string | ProtocolProblem {
  if (typeof raw !== "string") return problem("say.text must be a string");
  if (raw.length > MAX_TEXT_CHARS) return problem(`say.text must be at most ${MAX_TEXT_CHARS} characters, got ${raw.length}`);
  if (raw.trim() === "") return problem("say.text must not be empty");
  if (TEXT_FORBIDDEN.test(raw)) return problem("say.text must not contain control characters other than tab and newline");
  return raw;
}

/** One received frame → a message or what is wrong with it. */
export function parseClientMessage(data: string, isBinary: boolean): ClientMessage | ProtocolProblem {
  if (isBinary) return problem("messages must be JSON text frames, got a binary frame");
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return problem("messages must be JSON");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) return problem("a message must be a JSON object");
  const m = value as Record<string, unknown>;
  switch (m["type"]) {
    case "join": {
      const name = checkName(m["name"]);
      return typeof name === "string" ? { type: "join", name } : name;
    }
    case "say": {
      const text = checkText(m["text"]);
      return typeof text === "string" ? { type: "say", text } : text;
    }
    case "ping":
      return { type: "ping" };
    default:
      return problem(`type must be "join", "say" or "ping", got ${JSON.stringify(String(m["type"])).slice(0, 60)}`);
  }
}

export function isProblem(value: ClientMessage | ProtocolProblem): value is ProtocolProblem {
  return "error" in value;
}
