/**
 * The HTTP and WebSocket face of a fake meeting server, for the gateway's
 * tests: it answers requests for meetings it holds with a JSON echo of the
 * request (marked X-Meeting-Server) and echoes WebSocket messages prefixed
 * with its node id; a meeting it does not hold gets 421, as API.md asks of
 * meeting servers.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer } from "ws";

export function meetingOf(url: string | undefined): string {
  return /^\/meetings\/([^/?]+)/.exec(url ?? "")?.[1] ?? "";
}

export class FakeMeetingHttp {
  private readonly server = http.createServer((req, res) => this.onRequest(req, res));
  private readonly wss = new WebSocketServer({ noServer: true });
  private resetNext = false;

  constructor(
    private readonly nodeId: string,
    private readonly holds: (meetingId: string) => boolean,
  ) {
    this.server.on("upgrade", (req, socket, head) => {
      socket.on("error", () => undefined);
      if (!this.holds(meetingOf(req.url))) {
        socket.end("HTTP/1.1 421 Misdirected Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => ws.on("message", (data) => ws.send(`${this.nodeId}:${String(data)}`)));
    });
    this.server.on("clientError", (_err, socket) => socket.destroy());
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return (this.server.address() as AddressInfo).port;
  }

  /** Stops listening (connections are refused) and cuts every open connection and WebSocket. */
  close(): void {
    for (const ws of this.wss.clients) ws.terminate();
    this.server.closeAllConnections();
    this.server.close();
  }

  /** Answers its next request by resetting the connection, and serves nothing from then on. */
  resetThenClose(): void {
    this.resetNext = true;
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.resetNext) {
      this.resetNext = false;
      this.close();
      req.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const meetingId = meetingOf(req.url);
      if (!this.holds(meetingId)) {
        res.writeHead(421, { "content-type": "application/json", "x-not-held": "1" }).end(JSON.stringify({ error: "not_held" }));
        return;
      }
      const body = Buffer.concat(chunks);
      res.writeHead(200, { "content-type": "application/json", "x-meeting-server": this.nodeId });
      res.end(JSON.stringify({ node: this.nodeId, meetingId, method: req.method, url: req.url, bodyBytes: body.length, body: body.toString(), forwardedFor: req.headers["x-forwarded-for"] }));
    });
  }
}
