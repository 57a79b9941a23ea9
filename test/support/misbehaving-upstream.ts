/**
 * A meeting server that misbehaves on request, for the gateway's edge test
 * (test/abrupt-gateway.test.ts): registered with the coordinator (as a
 * FakeMeetingNode: heartbeats and an open watch, so it is alive and every
 * meeting is placed on it), serving HTTP and WebSocket under
 * /meetings/{id}/ with the last path segment choosing the behaviour:
 *
 *   ok                  200 "ok"
 *   echo                200 with the length of the body received
 *   big                 200 with a 5 MiB body, written as fast as the gateway reads
 *   huge                200 with a 64 MiB body, likewise (more than the kernel buffers between
 *                       the two connections of a proxy hold, so only backpressure stops it)
 *   hold                never answers (held until the gateway gives up, or close())
 *   reset               resets the connection before answering
 *   reset-mid-body      sends the head and 64 KiB of a 1 MiB body, then resets
 *   ws                  WebSocket upgrade; echoes text frames
 *   ws-hold             never answers the upgrade (held until close())
 *   ws-reset            resets before answering the upgrade
 *   ws-reset-after      upgrades, then resets the open WebSocket when told to
 *   ws-refuse-cut       answers the upgrade with a 403 whose body is cut short by a reset
 *
 * It counts what happened on its side, so tests can wait on it instead of sleeping.
 */
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import { WebSocketServer } from "ws";
import { FakeMeetingNode } from "./fake-meeting-node.js";

export const BIG_BODY_BYTES = 5 * 1024 * 1024;
export const HUGE_BODY_BYTES = 64 * 1024 * 1024;

/** Progress of the bodies one behaviour wrote. */
export class BodyProgress {
  /** Bytes handed to the kernel so far. */
  written = 0;
  /** Writes waiting for 'drain' now: the reader is not keeping up. */
  waiting = 0;
}

function behaviour(url: string | undefined): string {
  const path = (url ?? "").split("?")[0]!;
  return path.slice(path.lastIndexOf("/") + 1);
}

export class MisbehavingUpstream {
  /** Upgrades held unanswered (ws-hold), until they close. */
  readonly held = new Set<Duplex>();
  /** Requests held unanswered (hold), until they close. */
  readonly heldRequests = new Set<Duplex>();
  /** Open upgraded WebSocket sockets. */
  readonly webSockets = new Set<Duplex>();
  readonly big = new BodyProgress();
  readonly huge = new BodyProgress();
  private readonly server = http.createServer((req, res) => this.onRequest(req, res));
  private readonly wss = new WebSocketServer({ noServer: true });
  private node: FakeMeetingNode | undefined;

  private constructor() {
    this.server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    this.server.on("clientError", (_err, socket: Duplex) => socket.destroy());
    this.server.on("connection", (socket: Socket) => socket.on("error", () => undefined));
  }

  /** Listens on a free port and registers as `nodeId` with the coordinator at `coordinator`. */
  static async start(nodeId: string, coordinator: string): Promise<MisbehavingUpstream> {
    const upstream = new MisbehavingUpstream();
    await new Promise<void>((resolve) => upstream.server.listen(0, "127.0.0.1", resolve));
    const { port } = upstream.server.address() as AddressInfo;
    upstream.node = new FakeMeetingNode(nodeId, coordinator, port, 1000);
    await upstream.node.start(true);
    return upstream;
  }

  /** Resets every open WebSocket (ws-reset-after). */
  resetWebSockets(): void {
    for (const s of this.webSockets) (s as Socket).resetAndDestroy();
  }

  async close(): Promise<void> {
    this.node?.stop();
    for (const s of [...this.held, ...this.heldRequests, ...this.webSockets]) s.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private hold(socket: Duplex, set = this.held): void {
    set.add(socket);
    socket.once("close", () => set.delete(socket));
    // The gateway gave up on it (an upgrade socket is half-open after a FIN: close it here too).
    socket.once("end", () => socket.destroy());
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    switch (behaviour(req.url)) {
      case "echo": {
        let n = 0;
        req.on("data", (c: Buffer) => (n += c.length));
        req.on("end", () => res.end(String(n)));
        req.on("error", () => undefined);
        return;
      }
      case "big":
        this.writeBody(res, BIG_BODY_BYTES, this.big);
        return;
      case "huge":
        this.writeBody(res, HUGE_BODY_BYTES, this.huge);
        return;
      case "hold":
        this.hold(req.socket, this.heldRequests);
        return;
      case "reset":
        req.socket.resetAndDestroy();
        return;
      case "reset-mid-body":
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": 1024 * 1024 });
        res.write(Buffer.alloc(64 * 1024, 0x62), () => req.socket.resetAndDestroy());
        return;
      default:
        res.end("ok");
    }
  }

  /** `size` bytes in 64 KiB chunks, waiting for 'drain': only as fast as the reader reads. */
  private writeBody(res: http.ServerResponse, size: number, progress: BodyProgress): void {
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": size });
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let sent = 0;
    const pump = (): void => {
      while (sent < size && !res.destroyed) {
        sent += chunk.length;
        const more = res.write(chunk, () => (progress.written += chunk.length));
        if (!more) {
          progress.waiting++;
          const resume = (): void => {
            progress.waiting--;
            res.off("close", resume);
            res.off("drain", resume);
            pump();
          };
          res.once("drain", resume);
          res.once("close", resume);
          return;
        }
      }
      if (!res.destroyed) res.end();
    };
    res.on("error", () => undefined);
    pump();
  }

  private onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    switch (behaviour(req.url)) {
      case "ws-hold":
        this.hold(socket);
        return;
      case "ws-reset":
        (socket as Socket).resetAndDestroy();
        return;
      case "ws-refuse-cut":
        socket.write("HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\nnot all of it", () => (socket as Socket).resetAndDestroy());
        return;
      default:
        this.wss.handleUpgrade(req, socket, head, (ws) => {
          this.webSockets.add(socket);
          socket.once("close", () => this.webSockets.delete(socket));
          ws.on("error", () => undefined);
          ws.on("message", (data) => ws.send(`echo:${String(data)}`));
        });
    }
  }
}
