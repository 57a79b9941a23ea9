/**
 * Closing a client connection the way production proxies do (nginx's
 * lingering close): the answer is written, then our side is ended (FIN),
 * and whatever the client still sends is read and dropped until it closes
 * too, for at most `lingerMs`. Closing at once instead would let the kernel
 * answer the client's unread bytes with a reset, and a reset makes the
 * client's kernel drop the answer it has not read yet: the client sees
 * ECONNRESET or EPIPE instead of the answer. Bounded both ways: a client
 * that neither closes nor reads is destroyed when `lingerMs` runs out.
 */
import type { Duplex } from "node:stream";

/** How long a closing connection keeps reading what its client still sends. */
export const LINGER_MS = 5_000;

const closing = new WeakSet<Duplex>();

/**
 * Writes `last` (if any), ends the connection, drains the client's bytes;
 * destroys it after `lingerMs` at the latest. Once per socket: a later call
 * (a parser error on bytes that arrive while lingering) changes nothing.
 */
export function closeGracefully(socket: Duplex, last?: string | Buffer, lingerMs = LINGER_MS): void {
  if (socket.destroyed || closing.has(socket)) return;
  closing.add(socket);
  const timer = setTimeout(() => socket.destroy(), lingerMs);
  timer.unref();
  socket.once("close", () => clearTimeout(timer));
  // Errors while lingering (the client resets after reading) change nothing: the socket is closing.
  socket.on("error", () => socket.destroy());
  if (socket.writable) socket.end(last);
  // Reading on (and dropping) keeps the kernel from resetting the connection over unread input.
  socket.on("data", () => undefined);
  socket.resume();
}
