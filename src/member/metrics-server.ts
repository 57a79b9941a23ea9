/**
 * A member's own HTTP port (--metrics-listen) for monitoring, as etcd and
 * Kubernetes expect one:
 *
 *   GET /metrics  Prometheus text format (member-metrics.ts)
 *   GET /livez    200 while the process runs its loop: the Raft timer has
 *                 ticked within LIVE_WITHIN_MS; 503 otherwise (restart it)
 *   GET /readyz   200 when the member has a leader and has applied up to
 *                 the leader's commit index at the time of the request (a
 *                 ReadIndex round, as a linearizable read waits for); 503
 *                 with the reason otherwise (send it no traffic yet)
 *
 * Plain HTTP, no authentication (the answers hold counts and states, no
 * keys or meeting contents): loopback by default, beyond loopback only
 * with --insecure (member-config.ts).
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { RaftDriver } from "../raft-runtime/driver.js";
import type { MemberMetrics } from "./member-metrics.js";

/** The loop ticks at least once per election timeout; this much silence means it is stuck (or stopped). */
const LIVE_WITHIN_MS = 5_000;
/** How long /readyz waits for its ReadIndex round. */
const READY_TIMEOUT_MS = 2_000;

export interface MetricsEndpoint {
  /** host:port actually bound. */
  readonly address: string;
  close(): Promise<void>;
}

function answer(res: ServerResponse, status: number, body: string, contentType = "text/plain; charset=utf-8"): void {
  res.writeHead(status, { "content-type": contentType, "cache-control": "no-store" });
  res.end(body);
}

async function route(req: IncomingMessage, res: ServerResponse, node: RaftDriver, metrics: MemberMetrics): Promise<void> {
  const path = (req.url ?? "/").split("?")[0];
  if (req.method !== "GET" && req.method !== "HEAD") return answer(res, 405, "only GET\n");
  switch (path) {
    case "/metrics":
      return answer(res, 200, await metrics.registry.metrics(), metrics.registry.contentType);
    case "/livez": {
      const silentMs = Math.round(node.sinceLastTickMs());
      return silentMs <= LIVE_WITHIN_MS ? answer(res, 200, "ok\n") : answer(res, 503, `the Raft loop has not ticked for ${silentMs} ms\n`);
    }
    case "/readyz": {
      if (node.status().lead === "") return answer(res, 503, "no leader known\n");
      try {
        await node.read(() => undefined, READY_TIMEOUT_MS);
      } catch (err) {
        return answer(res, 503, `not caught up with the leader's commit index: ${(err as Error).message}\n`);
      }
      return answer(res, 200, "ok\n");
    }
    default:
      return answer(res, 404, "not found: /metrics, /livez, /readyz\n");
  }
}

/** Binds `listen` (host:port; port 0 for any) and serves; rejects if it cannot bind. */
export function startMetricsServer(listen: string, node: RaftDriver, metrics: MemberMetrics): Promise<MetricsEndpoint> {
  const colon = listen.lastIndexOf(":");
  const host = listen.slice(0, colon).replace(/^\[|\]$/g, "");
  const port = Number(listen.slice(colon + 1));
  const server: Server = createServer((req, res) => {
    route(req, res, node, metrics).catch((err: unknown) => {
      if (!res.headersSent) answer(res, 500, `${(err as Error).message}\n`);
      else res.destroy();
    });
  });
  // A broken client connection is that client's problem, never the member's.
  server.on("clientError", (_err, socket) => socket.destroy());
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      server.on("error", () => undefined);
      const bound = server.address() as AddressInfo;
      resolve({
        address: `${bound.family === "IPv6" ? `[${bound.address}]` : bound.address}:${bound.port}`,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}
