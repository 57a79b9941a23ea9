/**
 * What a request path under /meetings/ asks for. Shared by the HTTP routes
 * and the WebSocket upgrade handler, so both refuse the same ids the same
 * way. Parsed from the raw URL (not the router's params) so that ids with
 * ':' or '.' and percent-encoded segments are handled in one place.
 *
 *   /meetings/{id}         bare   → redirect to the trailing slash
 *   /meetings/{id}/        page   → the chat page
 *   /meetings/{id}/ws      ws     → the WebSocket (upgrade only)
 *   /meetings/{id}/state   state  → the room as JSON (tests, debugging)
 *   /meetings/{id}/...     other  → 404
 */
import { idProblem } from "../wire/describe.js";


export type MeetingTarget =
  | { readonly kind: "bare" | "page" | "ws" | "state" | "other"; readonly meetingId: string; readonly query: string }
  | { readonly kind: "bad-id"; readonly message: string };

const PREFIX = "/meetings/";

/** The target of `url` (path and query), or undefined when it is not under /meetings/. */
export function parseMeetingPath(url: string): MeetingTarget | undefined {
  const q = url.indexOf("?");
  const path = q < 0 ? url : url.slice(0, q);
  const query = q < 0 ? "" : url.slice(q);
  if (!path.startsWith(PREFIX)) return undefined;
  const rest = path.slice(PREFIX.length);
  const slash = rest.indexOf("/");
  const rawId = slash < 0 ? rest : rest.slice(0, slash);
  let meetingId: string;
  try {
    meetingId = decodeURIComponent(rawId);
  } catch {
    return { kind: "bad-id", message: "meeting id is not valid percent-encoding" };
  }
  const problem = idProblem("meeting", meetingId);
  if (problem) return { kind: "bad-id", message: `the meeting id in the path ${problem}` };
  if (slash < 0) return { kind: "bare", meetingId, query };
  const sub = rest.slice(slash + 1);
  const kind = sub === "" ? "page" : sub === "ws" ? "ws" : sub === "state" ? "state" : "other";
  return { kind, meetingId, query };
}
