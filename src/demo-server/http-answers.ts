/**
 * The demo server's error answers, for HTTP replies and for upgrade
 * sockets (which never reach fastify, so they are written raw). Every
 * error body is JSON {"error": code, "message": what and why}, as API.md
 * has it for the gateway.
 */
import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";

export interface ErrorBody {
  readonly error: string;
  readonly message: string;
}

/**
 * 421 Misdirected Request: the meeting is not held here (it moved, or its
 * ASSIGNED did not arrive in time). The gateway treats it as a stale route
 * and asks the coordinator again.
 */
export function notHere(meetingId: string, nodeId: string): ErrorBody {
  return { error: "not_here", message: `meeting ${meetingId} is not served by node ${nodeId}` };
}

export function badId(message: string): ErrorBody {
  return { error: "invalid_meeting_id", message };
}

/** Answers an upgrade request that will not become a WebSocket, then closes the connection. */
export function refuseUpgrade(socket: Duplex, status: number, body: ErrorBody, extraHeaders: Record<string, string> = {}): void {
  if (socket.destroyed) return;
  const json = JSON.stringify(body);
  const headers = {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": String(Buffer.byteLength(json)),
    Connection: "close",
    ...extraHeaders,
  };
  const head = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)].join("\r\n");
  socket.end(`${head}\r\n\r\n${json}`);
  // end() waits for the peer; a peer that never reads must not hold the socket.
  setTimeout(() => socket.destroy(), 1000).unref();
}
