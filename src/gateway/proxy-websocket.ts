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
 * Either side may vanish at any moment (a reset, a closed laptop), and no
 * such event may end the process: every connection is a Tunnel whose two
 * sockets are watched here. When the client goes, its upstream attempt or
 * upstream socket is destroyed with it (the host is not blamed); when the
 * host goes, the client's connection is closed (at once for a reset
 * answer, gracefully for an open WebSocket). Each such loss is counted
 * (convene_gateway_client_disconnects_total, _upstream_disconnects_total).
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
import { closeGracefully } from "./socket-close.js";
import type { UpstreamReporter } from "./upstream-reporter.js";

/** The client left while its upgrade was still on its way to the host: the attempt is dropped, the host not blamed. */
class ClientGoneError extends Error {
  readonly code = "CLIENT_GONE";
}

/**
 * One client connection on its way through the proxy:
 * routing → connecting → upgraded (101 relayed) or answering (the host's
 * non-101 answer relayed) → closed; or refused (answered here) → closed.
 */
interface Tunnel {
  readonly client: Duplex;
  stage: "routing" | "connecting" | "upgraded" | "answering" | "refused" | "closed";
  route: Route | undefined;
  upstreamRequest: ClientRequest | undefined;
  upstream: Duplex | undefined;
  /** The client's loss was counted (its error and its close both report it). */
  clientLost: boolean;
  /** The host's loss was counted (its socket's error and its answer's close both report it). */
  upstreamLost: boolean;
}

export class WebSocketProxy {
  private readonly proxy;
  /** Client sockets (from the upgrade request on) and upstream sockets (once upgraded), to end them on close. */
  private readonly clients = new Set<Duplex>();
  private readonly upstreams = new Set<Duplex>();
  private readonly tunnels = new WeakMap<IncomingMessage, Tunnel>();
  private readonly scheme: "http" | "https";
  private closed = false;

  constructor(
    private readonly resolver: RouteResolver,
    private readonly reporter: UpstreamReporter,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
    options: { connectTimeoutMs: number; responseTimeoutMs: number; upstream?: { readonly scheme: "http" | "https"; readonly agent?: Agent } },
  ) {
    this.scheme = options.upstream?.scheme ?? "http";
    this.proxy = createProxyServer({ ws: true, xfwd: true, agent: options.upstream?.agent });
    // http-proxy-3 re-emits every client socket error here and throws it when nobody listens:
    // the loss itself is counted by the tunnel's own listeners (watchClient).
    this.proxy.on("error", (err: Error) => this.logger.debug({ err }, "proxied websocket connection failed"));
    this.proxy.on("proxyReqWs", (proxyReq: ClientRequest, req: IncomingMessage) => {
      const tunnel = this.tunnels.get(req);
      if (!tunnel) return;
      tunnel.upstreamRequest = proxyReq;
      // A host that never completes the TCP handshake (frozen, or its packets dropped) is given up after connectTimeoutMs.
      proxyReq.once("socket", (socket: Socket) => {
        if (!socket.connecting) return;
        const timer = setTimeout(() => proxyReq.destroy(Object.assign(new Error("connect timed out"), { code: "ETIMEDOUT" })), options.connectTimeoutMs);
        socket.once("connect", () => clearTimeout(timer));
        socket.once("close", () => clearTimeout(timer));
      });
      if (tunnel.client.destroyed) {
        proxyReq.destroy(new ClientGoneError("the client left before its upgrade was sent"));
        return;
      }
      // A host that accepts the connection but never answers the upgrade must not hold the client.
      proxyReq.setTimeout(options.responseTimeoutMs, () => proxyReq.destroy(Object.assign(new Error("upgrade answer timed out"), { code: "ETIMEDOUT" })));
      // Registered before http-proxy-3's own listeners, so the header is in what it relays.
      proxyReq.on("upgrade", (res: IncomingMessage, upstream: Socket) => this.onUpgraded(tunnel, res, upstream));
      proxyReq.on("response", (res: IncomingMessage) => this.onAnswered(tunnel, res));
    });
  }

  /** Client connections being proxied or about to be. */
  get openConnections(): number {
    return this.clients.size;
  }

  /** The server's 'upgrade' listener. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const tunnel: Tunnel = { client: socket, stage: "routing", route: undefined, upstreamRequest: undefined, upstream: undefined, clientLost: false, upstreamLost: false };
    this.tunnels.set(req, tunnel);
    this.watchClient(tunnel);
    this.track(this.clients, socket);
    void this.route(req, tunnel, head);
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

  /** The client side: a loss is counted once, by stage, and takes the upstream side with it. */
  private watchClient(tunnel: Tunnel): void {
    const { client } = tunnel;
    const lost = (why: "error" | "close"): void => {
      const stage = tunnel.stage;
      tunnel.stage = "closed";
      if (tunnel.clientLost || stage === "refused" || stage === "closed") return;
      // After the upgrade only a reset is a loss: a clean close is how a WebSocket ends.
      if (stage === "upgraded" && why === "close") return;
      tunnel.clientLost = true;
      this.metrics.countClientDisconnect("websocket", stage === "upgraded" ? "upgraded" : stage === "answering" ? "response_body" : "awaiting_upgrade");
    };
    client.on("error", (err) => {
      this.logger.debug({ err, stage: tunnel.stage }, "websocket client socket failed");
      lost("error");
    });
    client.once("close", () => {
      const upgraded = tunnel.stage === "upgraded";
      lost("close");
      if (tunnel.upstream) {
        // An open WebSocket whose client left cleanly ends cleanly; a reset one goes at once.
        if (upgraded && !tunnel.clientLost) tunnel.upstream.end();
        else tunnel.upstream.destroy();
      } else {
        tunnel.upstreamRequest?.destroy(new ClientGoneError("the client left before its upgrade was answered"));
      }
    });
  }

  private onUpgraded(tunnel: Tunnel, res: IncomingMessage, upstream: Socket): void {
    tunnel.upstream = upstream;
    this.track(this.upstreams, upstream);
    if (tunnel.client.destroyed) {
      upstream.destroy();
      return;
    }
    tunnel.stage = "upgraded";
    if (tunnel.route) res.headers["x-convene-node"] = tunnel.route.nodeId;
    this.metrics.countRequest("websocket", 101);
    // http-proxy-3 only ends the client when the host's socket closes; a client that
    // does not read would then hold it half-closed forever.
    upstream.once("close", () => {
      if (!tunnel.client.destroyed) closeGracefully(tunnel.client);
    });
  }

  private onAnswered(tunnel: Tunnel, res: IncomingMessage): void {
    tunnel.stage = "answering";
    const route = tunnel.route;
    if (route) {
      res.headers["x-convene-node"] = route.nodeId;
      this.metrics.countRequest("websocket", res.statusCode ?? 502);
      // "Not held here" is relayed as is; the client's next attempt asks the coordinator afresh.
      if (res.statusCode === 421) this.resolver.forgetStale(route);
    }
    // http-proxy-3 relays the answer and closes the client on its end, but
    // not when the host cuts it short: the client would wait for the rest.
    res.once("close", () => {
      if (res.complete || tunnel.clientLost) return;
      this.upstreamLost(tunnel, "response_body");
      tunnel.stage = "closed";
      tunnel.client.destroy();
    });
  }

  private async route(req: IncomingMessage, tunnel: Tunnel, head: Buffer): Promise<void> {
    const socket = tunnel.client;
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
      // request gets.
      const upgrade = req.headers.upgrade ?? "";
      if (req.method !== "GET" || upgrade.toLowerCase() !== "websocket") {
        const got = `${JSON.stringify(req.method ?? "")} with Upgrade ${JSON.stringify(upgrade.slice(0, 40))}`;
        throw new MalformedRequestError(`only WebSocket upgrades are proxied (a GET with "Upgrade: websocket"), not ${got}`);
      }
      const found = this.resolver.lookup(target.meetingId, ip);
      route = found instanceof Promise ? await found : found;
    } catch (err) {
      if (!socket.destroyed) this.refuse(tunnel, err);
      return;
    }
    if (socket.destroyed) return;
    tunnel.route = route;
    tunnel.stage = "connecting";
    this.proxy.ws(req, socket, head, { target: `${this.scheme}://${route.address}` }, (err: Error) => this.onProxyError(tunnel, route, err));
  }

  /** http-proxy-3's callback: the upstream request or the upstream socket failed. */
  private onProxyError(tunnel: Tunnel, route: Route, err: Error): void {
    if (err instanceof ClientGoneError || tunnel.clientLost) return;
    if (tunnel.stage === "upgraded" || tunnel.stage === "answering") {
      // The host went away mid-stream or mid-answer; the client's side is closed on the upstream's close.
      this.upstreamLost(tunnel, tunnel.stage === "upgraded" ? "upgraded" : "response_body");
      this.logger.debug({ err, meetingId: route.meetingId, node: route.nodeId }, "proxied websocket upstream failed");
      return;
    }
    if (tunnel.stage !== "connecting") return;
    const code = (err as { code?: unknown }).code;
    const detail = typeof code === "string" ? code : err.message;
    this.metrics.upstreamFailures.labels(code === "ETIMEDOUT" ? "timeout" : code === "ECONNREFUSED" ? "refused" : "error").inc();
    this.reporter.report(route, detail);
    this.resolver.forgetStale(route);
    // Written now; http-proxy-3 ends the socket right after this callback, once the write is flushed.
    this.refuse(
      tunnel,
      new UpstreamUnavailableError(`meeting ${route.meetingId}: its host ${route.nodeId} at ${route.address} failed the WebSocket upgrade (${detail}); retry shortly`),
      false,
    );
  }

  private upstreamLost(tunnel: Tunnel, stage: "upgraded" | "response_body"): void {
    if (tunnel.upstreamLost) return;
    tunnel.upstreamLost = true;
    this.metrics.countUpstreamDisconnect("websocket", stage);
  }

  private refuse(tunnel: Tunnel, err: unknown, close = true): void {
    const socket = tunnel.client;
    tunnel.stage = "refused";
    this.metrics.countRequest("websocket", toHttpError(err).status);
    if (close) {
      writeSocketError(socket, err);
      return;
    }
    if (!socket.destroyed && socket.writable) socket.write(socketErrorResponse(err));
  }
}
