/**
 * WebSocket pass-through for `/meetings/{id}` and below, with http-proxy-3:
 * the upgrade request goes to the meeting's host (same path and query); its
 * 101 answer carries `X-Convene-Node`, then bytes flow both ways untouched.
 *
 * Upgrade requests never reach fastify's routes (node hands them to the
 * server's 'upgrade' event), so errors are answered here on the raw socket
 * with the same JSON bodies. A host that refuses or does not answer the
 * upgrade in time gets 503 + Retry-After, its route is dropped and the
 * coordinator told, so the client's reconnect is routed afresh. (Unlike
 * plain HTTP there is no transparent second attempt: http-proxy-3 closes
 * the client socket once the upstream attempt failed.)
 *
 * Created by startGateway; `close()` ends every proxied connection.
 */
import type { Agent, ClientRequest, IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { createProxyServer } from "http-proxy-3";
import type { Logger } from "pino";
import { BadPathError, GatewayClosedError, MalformedRequestError, UpstreamUnavailableError, toHttpError } from "./errors.js";
import type { GatewayMetrics } from "./metrics.js";
import { parseMeetingUrl } from "./paths.js";
import type { Route } from "./route-cache.js";
import type { RouteResolver } from "./route-resolver.js";
import { socketErrorResponse, writeSocketError } from "./send-error.js";
import type { UpstreamReporter } from "./upstream-reporter.js";

export class WebSocketProxy {
  private readonly proxy;
  /** Client sockets (from the upgrade request on) and upstream sockets (once upgraded), to end them on close. */
  private readonly clients = new Set<Duplex>();
  private readonly upstreams = new Set<Duplex>();
  private readonly routeOf = new WeakMap<IncomingMessage, Route>();
  private readonly upgraded = new WeakSet<IncomingMessage>();
  private closed = false;
  private readonly scheme: "http" | "https";

  constructor(
    private readonly resolver: RouteResolver,
    private readonly reporter: UpstreamReporter,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
    options: { connectTimeoutMs: number; responseTimeoutMs: number; upstream?: { readonly scheme: "http" | "https"; readonly agent?: Agent } },
  ) {
    this.scheme = options.upstream?.scheme ?? "http";
    this.proxy = createProxyServer({ ws: true, xfwd: true, connectTimeout: options.connectTimeoutMs, agent: options.upstream?.agent });
    this.proxy.on("proxyReqWs", (proxyReq: ClientRequest, req: IncomingMessage) => {
      const route = this.routeOf.get(req);
      // A host that accepts the connection but never answers the upgrade must not hold the client.
      proxyReq.setTimeout(options.responseTimeoutMs, () => proxyReq.destroy(Object.assign(new Error("upgrade answer timed out"), { code: "ETIMEDOUT" })));
      // Registered before http-proxy-3's own listeners, so the header is in what it relays.
      proxyReq.on("upgrade", (res: IncomingMessage) => {
        this.upgraded.add(req);
        if (route) res.headers["x-convene-node"] = route.nodeId;
        this.metrics.countRequest("websocket", 101);
      });
      proxyReq.on("response", (res: IncomingMessage) => {
        if (!route) return;
        res.headers["x-convene-node"] = route.nodeId;
        this.metrics.countRequest("websocket", res.statusCode ?? 502);
        // "Not held here" is relayed as is; the client's next attempt asks the coordinator afresh.
        if (res.statusCode === 421) this.resolver.forgetStale(route);
      });
    });
    this.proxy.on("open", (proxySocket: Socket) => this.track(this.upstreams, proxySocket));
  }

  /** Client connections being proxied or about to be. */
  get openConnections(): number {
    return this.clients.size;
  }

  /** The server's 'upgrade' listener. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.track(this.clients, socket);
    socket.on("error", (err) => this.logger.debug({ err }, "websocket client socket failed"));
    void this.route(req, socket, head);
  }

  /** Ends every proxied connection; later upgrades get 503. */
  close(): void {
    this.closed = true;
    for (const set of [this.clients, this.upstreams]) {
      for (const s of set) s.destroy();
      set.clear();
    }
    this.proxy.close();
  }

  private track(set: Set<Duplex>, socket: Duplex): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    set.add(socket);
    socket.once("close", () => set.delete(socket));
  }

  private async route(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const ip = req.socket.remoteAddress ?? "";
    let route: Route;
    try {
      if (this.closed) throw new GatewayClosedError("the gateway is closing");
      const url = req.url ?? "";
      if (!url.startsWith("/meetings/")) throw new BadPathError(`WebSocket upgrades are proxied only under /meetings/{meetingId}, not ${JSON.stringify(url.slice(0, 100))}`);
      const target = parseMeetingUrl(url);
      // As for plain requests (gateway.ts, lacksHost): Node no longer refuses these itself.
      if (req.httpVersion === "1.1" && req.headers.host === undefined) throw new MalformedRequestError("an HTTP/1.1 request must have a Host header");
      // http-proxy-3 drops any other upgrade without a word (it destroys the
      // socket); refused here instead, with the JSON answer every other bad
      // request gets (found by test/fuzz-gateway.test.ts).
      const upgrade = req.headers.upgrade ?? "";
      if (req.method !== "GET" || upgrade.toLowerCase() !== "websocket") {
        const got = `${JSON.stringify(req.method ?? "")} with Upgrade ${JSON.stringify(upgrade.slice(0, 40))}`;
        throw new MalformedRequestError(`only WebSocket upgrades are proxied (a GET with "Upgrade: websocket"), not ${got}`);
      }
      const found = this.resolver.lookup(target.meetingId, ip);
      route = found instanceof Promise ? await found : found;
    } catch (err) {
      this.refuse(socket, err);
      return;
    }
    if (socket.destroyed) return;
    this.routeOf.set(req, route);
    this.proxy.ws(req, socket, head, { target: `${this.scheme}://${route.address}` }, (err: Error) => {
      if (this.upgraded.has(req)) {
        // The connection was up: the upstream went away mid-stream; http-proxy-3 closes the client side.
        this.logger.debug({ err, meetingId: route.meetingId, node: route.nodeId }, "proxied websocket upstream failed");
        return;
      }
      const code = (err as { code?: unknown }).code;
      const detail = typeof code === "string" ? code : err.message;
      this.metrics.upstreamFailures.labels(code === "ETIMEDOUT" ? "timeout" : code === "ECONNREFUSED" ? "refused" : "error").inc();
      this.reporter.report(route, detail);
      this.resolver.forgetStale(route);
      // Written now; http-proxy-3 ends the socket right after this callback, once the write is flushed.
      this.refuse(
        socket,
        new UpstreamUnavailableError(`meeting ${route.meetingId}: its host ${route.nodeId} at ${route.address} failed the WebSocket upgrade (${detail}); retry shortly`),
        false,
      );
    });
  }

  private refuse(socket: Duplex, err: unknown, close = true): void {
    this.metrics.countRequest("websocket", toHttpError(err).status);
    if (close) {
      writeSocketError(socket, err);
      return;
    }
    if (!socket.destroyed && socket.writable) socket.write(socketErrorResponse(err));
  }
}
