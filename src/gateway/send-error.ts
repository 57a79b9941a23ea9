/**
 * Writes the gateway's error answers: `{"error", "message"}` JSON with the
 * status and, for retryable ones, Retry-After (API.md). `sendError` for
 * fastify replies, `writeSocketError` for upgrade requests, which never
 * become fastify requests and are answered on the raw socket.
 */
import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import type { FastifyReply } from "fastify";
import { errorBody, toHttpError } from "./errors.js";
import { closeGracefully } from "./socket-close.js";

export function sendError(reply: FastifyReply, err: unknown): void {
  if (reply.sent) return;
  const e = toHttpError(err);
  reply.code(e.status).header("content-type", "application/json; charset=utf-8");
  if (e.retryAfterS !== undefined) reply.header("retry-after", String(e.retryAfterS));
  reply.send(errorBody(e.code, e.message));
}

/** The raw HTTP/1.1 answer for `err`; the connection closes after it. */
export function socketErrorResponse(err: unknown): string {
  const e = toHttpError(err);
  const body = errorBody(e.code, e.message);
  const retryAfter = e.retryAfterS !== undefined ? `Retry-After: ${e.retryAfterS}\r\n` : "";
  return (
    `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? "Error"}\r\n` +
    `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${retryAfter}Connection: close\r\n\r\n${body}`
  );
}

/** Answers on a raw socket and closes it gracefully (socket-close.ts), so the client reads the answer. */
export function writeSocketError(socket: Duplex, err: unknown): void {
  closeGracefully(socket, socket.writable ? socketErrorResponse(err) : undefined);
}
