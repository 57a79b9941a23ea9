/**
 * Closing a client connection the way production proxies do (nginx's
 * lingering close): the answer is written, then our side is ended (FIN),
 * and whatever the client still sends is read and dropped until it closes
 * too. Closing at once instead lets the kernel answer the client's unread
 * bytes with a reset, and a reset makes the client's kernel drop the answer
 * it has not read yet: a client that sends its whole request before
 * reading (many do) sees EPIPE or ECONNRESET instead of the answer.
 * Bounded both ways: the connection is destroyed when the client sends
 * nothing for LINGER_IDLE_MS, and after LINGER_MAX_MS in any case.
 */
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";

/** How long a closing connection keeps reading what its client still sends, at most. */
export const LINGER_MAX_MS = 30_000;
/** ...and how long it waits for the client's next bytes. */
export const LINGER_IDLE_MS = 5_000;

const closing = new WeakSet<Duplex>();

/**
 * Writes `last` (if any), ends the connection, drains the client's bytes;
 * destroys it after LINGER_IDLE_MS of silence or LINGER_MAX_MS. Once per
 * socket: a later call (a parser error on bytes that arrive while
 * lingering) changes nothing.
 */
export function closeGracefully(socket: Duplex, last?: string | Buffer): void {
  if (socket.destroyed || closing.has(socket)) return;
  closing.add(socket);
  const max = setTimeout(() => socket.destroy(), LINGER_MAX_MS);
  let idle = setTimeout(() => socket.destroy(), LINGER_IDLE_MS);
  max.unref();
  idle.unref();
  socket.once("close", () => {
    clearTimeout(max);
    clearTimeout(idle);
  });
  // Errors while lingering (the client resets after reading) change nothing: the socket is closing.
  socket.on("error", () => socket.destroy());
  if (socket.writable) socket.end(last);
  // Reading on (and dropping) keeps the kernel from resetting the connection over unread input.
  socket.on("data", () => {
    clearTimeout(idle);
    idle = setTimeout(() => socket.destroy(), LINGER_IDLE_MS);
    idle.unref();
  });
  socket.resume();
}

/**
 * For a request answered before its body has all arrived (413, a broken
 * body): Node ends a connection whose last answer said "Connection: close"
 * with socket.destroySoon(), which closes it as soon as the answer is out,
 * over the unread rest of the body. On this socket it closes gracefully
 * instead.
 */
export function closeGracefullyAfterAnswer(socket: Socket): void {
  socket.destroySoon = () => closeGracefully(socket);
}
