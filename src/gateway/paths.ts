/**
 * The meeting id and the path of a request, read from the raw request URL
 * (not from the router's decoded parameters: what is checked must be what is
 * forwarded). A proxied path must stay inside its meeting's subtree on the
 * meeting server: no dot segments, plain or percent-encoded, and no encoded
 * slashes or backslashes, which servers may decode into separators after
 * the gateway chose the host.
 */
import { describeValue, idProblem } from "../wire/describe.js";
import { BadPathError, InvalidMeetingIdError } from "./errors.js";

const MEETINGS_PREFIX = "/meetings/";
const ROUTE_PREFIX = "/route/";
/** Encoded "/" or "\", and a plain "\" (some servers treat it as "/"). */
const HIDDEN_SEPARATOR = /%2f|%5c|\\/i;
const ENCODED_DOT = /%2e/gi;

export interface MeetingTarget {
  readonly meetingId: string;
  /** The path and query to forward, exactly as received. */
  readonly url: string;
}

function checkMeetingId(id: string): string {
  const problem = idProblem("meeting", id);
  if (problem) throw new InvalidMeetingIdError(`the meeting id in the path ${problem}`);
  // "." and ".." match the pattern but are dot segments: the URL would leave the meeting.
  if (id === "." || id === "..") throw new BadPathError(`meeting id ${describeValue(id)} is a dot segment, not a meeting`);
  return id;
}

/** `/meetings/{id}` or `/meetings/{id}/...` with its query; throws InvalidMeetingIdError or BadPathError. */
export function parseMeetingUrl(url: string): MeetingTarget {
  if (!url.startsWith(MEETINGS_PREFIX)) throw new BadPathError(`path must start with ${MEETINGS_PREFIX}{meetingId}`);
  const q = url.indexOf("?");
  const path = q === -1 ? url : url.slice(0, q);
  let end = path.indexOf("/", MEETINGS_PREFIX.length);
  if (end === -1) end = path.length;
  const meetingId = checkMeetingId(path.slice(MEETINGS_PREFIX.length, end));
  if (end < path.length) {
    const rest = path.slice(end);
    if (HIDDEN_SEPARATOR.test(rest)) throw new BadPathError(`path ${JSON.stringify(rest)} under meeting ${meetingId} holds an encoded slash or a backslash`);
    for (const segment of rest.replace(ENCODED_DOT, ".").split("/")) {
      // Some servers drop ";params" from a segment before resolving it ("..;" is "..").
      const bare = segment.split(";", 1)[0];
      if (bare === "." || bare === "..") throw new BadPathError(`path under meeting ${meetingId} holds a dot segment (${JSON.stringify(segment)})`);
    }
  }
  return { meetingId, url };
}

/** The id of `GET /route/{id}`; throws InvalidMeetingIdError or BadPathError. */
export function parseRouteUrl(url: string): string {
  const q = url.indexOf("?");
  return checkMeetingId(q === -1 ? url.slice(ROUTE_PREFIX.length) : url.slice(ROUTE_PREFIX.length, q));
}
