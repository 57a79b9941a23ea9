/**
 * WebSocket upgrades of /meetings/{id}/ws, taken from the Node HTTP
 * server's 'upgrade' event (fastify has no WebSocket support installed):
 * the id is checked, the meeting's assignment awaited like an HTTP request
 * (up to assignmentWaitMs), then the socket becomes a ChatSession, or gets
 * the same JSON error an HTTP request would (400, 404, 421, 503).
 *
 * Also pings every open socket at the protocol level every 10 s and drops
 * the ones that did not answer the previous ping: a browser whose machine
 * slept must not stay a participant forever.
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import { type WebSocket, WebSocketServer } from "ws";
import { MAX_WS_MESSAGE_BYTES } from "./chat-protocol.js";
import { ChatSession, type SessionContext } from "./chat-session.js";
import { badId, notHere, refuseUpgrade } from "./http-answers.js";
import { parseMeetingPath } from "./meeting-path.js";
import type { RoomRegistry } from "./room-registry.js";

export const SOCKET_PING_MS = 10_000;

const WS_KEY = /^[+/0-9A-Za-z]{22}==$/;

/**
 * What is wrong with the handshake headers, if anything. ws checks the same
 * but answers in plain text; checking first keeps every refusal JSON.
 */
function handshakeProblem(req: IncomingMessage): string | undefined {
  if (req.method !== "GET") return `a WebSocket handshake must be a GET, got ${req.method ?? "nothing"}`;
  if ((req.headers.upgrade ?? "").toLowerCase() !== "websocket") return "the Upgrade header must be websocket";
  const key = req.headers["sec-websocket-key"];
  if (typeof key !== "string" || !WS_KEY.test(key.trim())) return "Sec-WebSocket-Key must be 16 bytes in base64";
  const version = req.headers["sec-websocket-version"];
  if (version !== "13" && version !== "8") return "Sec-WebSocket-Version must be 13";
  return undefined;
}

export interface UpgradeContext extends SessionContext {
  readonly registry: RoomRegistry;
  readonly assignmentWaitMs: number;
  readonly log: Pick<Logger, "debug" | "warn">;
}

export class UpgradeHandler {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_WS_MESSAGE_BYTES, perMessageDeflate: false });
  private readonly pending = new Set<Duplex>();
  private readonly unanswered = new WeakSet<WebSocket>();
  private readonly pinger: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly ctx: UpgradeContext) {
    this.pinger = setInterval(() => this.pingAll(), SOCKET_PING_MS);
    this.pinger.unref();
  }

  /** The 'upgrade' listener; never throws. */
  readonly handle = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // An upgrade socket has no error listener of Node's; a reset would otherwise end the process.
    socket.on("error", (err) => this.ctx.log.debug({ err: err.message }, "upgrade socket error"));
    if (this.closed) {
      refuseUpgrade(socket, 503, { error: "shutting_down", message: `node ${this.ctx.nodeId} is shutting down` }, { "Retry-After": "1" });
      return;
    }
    const target = parseMeetingPath(req.url ?? "");
    if (target?.kind === "bad-id") {
      refuseUpgrade(socket, 400, badId(target.message));
      return;
    }
    if (target?.kind !== "ws") {
      refuseUpgrade(socket, 404, { error: "not_found", message: "WebSockets are served at /meetings/{id}/ws only" });
      return;
    }
    const problem = handshakeProblem(req);
    if (problem) {
      refuseUpgrade(socket, 400, { error: "bad_handshake", message: problem }, { "Sec-WebSocket-Version": "13" });
      return;
    }
    const { meetingId } = target;
    const hangUp = new AbortController();
    const onClose = (): void => hangUp.abort();
    socket.once("close", onClose);
    this.pending.add(socket);
    void this.ctx.registry.waitFor(meetingId, this.ctx.assignmentWaitMs, hangUp.signal).then((live) => {
      this.pending.delete(socket);
      socket.off("close", onClose);
      if (socket.destroyed) return;
      if (this.closed) {
        socket.destroy();
        return;
      }
      if (!live || live.closed) {
        refuseUpgrade(socket, 421, notHere(meetingId, this.ctx.nodeId));
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        // handleUpgrade may complete after a revoke: the client must reconnect elsewhere.
        if (live.closed) {
          ws.close(4001, "moved");
          return;
        }
        new ChatSession(ws, live, this.ctx);
      });
    });
  };

  /** Stops accepting; open sockets are closed by their rooms, pending upgrades are dropped. */
  close(): void {
    this.closed = true;
    clearInterval(this.pinger);
    for (const s of this.pending) s.destroy();
    this.pending.clear();
    // Sockets a revoke or closeAll missed (e.g. mid-handshake) go too.
    for (const ws of this.wss.clients) ws.terminate();
    this.wss.close();
  }

  private pingAll(): void {
    for (const ws of this.wss.clients) {
      if (ws.readyState !== ws.OPEN) continue;
      if (this.unanswered.has(ws)) {
        ws.terminate();
        continue;
      }
      this.unanswered.add(ws);
      ws.once("pong", () => this.unanswered.delete(ws));
      ws.ping();
    }
  }
}
