/**
 * The gateway process in one object: a fastify server with the routes of
 * API.md ("Gateway: HTTP"), its route cache kept fresh by the coordinator's
 * route feed, the HTTP and WebSocket proxies, /healthz, /metrics and the
 * dashboard.
 *
 * Order: validateGatewayConfig(raw) → startGateway(config, logger) (opens the
 * coordinator channels, starts the feed and the quorum probe, then listens)
 * → Gateway.close() (stops the feed and probe, ends proxied WebSockets,
 * closes the server and its upstream connections, then the channels).
 * Nothing is kept on disk: any number of gateways route identically.
 */
import { randomBytes } from "node:crypto";
import { Agent as HttpAgent, type IncomingMessage, type ServerResponse, createServer as createHttpServer } from "node:http";
import { Agent as HttpsAgent, createServer as createHttpsServer } from "node:https";
import type { Socket } from "node:net";
import Fastify, { type FastifyBaseLogger, type FastifyReply, type FastifyRequest, LogController } from "fastify";
import { type LevelWithSilent, type Logger, pino } from "pino";
import { PLAINTEXT, loadClientSecurity } from "../security/client-security.js";
import { readTlsFiles } from "../security/tls-files.js";
import type { GatewayConfig } from "./config.js";
import { CoordinatorClient } from "./coordinator-client.js";
import { CreateLimiter } from "./create-limiter.js";
import { DashboardSource } from "./dashboard-data.js";
import { renderDashboard } from "./dashboard-page.js";
import {
  BodyTooLargeError,
  ExpectationFailedError,
  HeadersTooLargeError,
  MalformedRequestError,
  NoQuorumError,
  RequestTimeoutError,
  RouteNotFoundError,
  errorBody,
  toHttpError,
} from "./errors.js";
import { LoopGuard, newGatewayId } from "./loop-guard.js";
import { GatewayMetrics, type RequestKind } from "./metrics.js";
import { NodeAddressGuard } from "./node-address-guard.js";
import { operatorGate } from "./operator-access.js";
import { parseRouteUrl } from "./paths.js";
import { registerHttpProxy } from "./proxy-http.js";
import { WebSocketProxy } from "./proxy-websocket.js";
import { QuorumProbe } from "./quorum-probe.js";
import { type CachedRoute, type Route, RouteCache, routeJson } from "./route-cache.js";
import { RouteFeed } from "./route-feed.js";
import { RouteResolver } from "./route-resolver.js";
import { sendError, writeSocketError } from "./send-error.js";
import { closeGracefullyAfterAnswer } from "./socket-close.js";
import { UpstreamReporter } from "./upstream-reporter.js";

declare module "fastify" {
  interface FastifyContextConfig {
    /** Which request counter a route's answers go to. */
    kind?: RequestKind;
  }
}

/** Headers larger than this get 431: no meeting request needs more. */
export const MAX_HEADER_BYTES = 16 * 1024;
/** Bound on a whole GetRoute over all members; each attempt at most ROUTE_ATTEMPT_MS. */
const ROUTE_DEADLINE_MS = 3000;
const ROUTE_ATTEMPT_MS = 1000;

export interface GatewayStats {
  readonly cachedRoutes: number;
  readonly feedRevision: number;
  readonly feedBatches: number;
  /** The member the route feed is open on, if any. */
  readonly feedMember: string | undefined;
  /** GetRoute calls made (cache misses and re-resolves). */
  readonly routeLookups: number;
  readonly upstreamReports: number;
  readonly openWebSockets: number;
  readonly healthy: boolean;
}

export interface Gateway {
  /** The address the server listens on, "host:port" (the real port when the config said 0). */
  readonly address: string;
  /** "http" or "https" (with tls in the config). */
  readonly scheme: "http" | "https";
  /** This gateway's id in the Via mark of what it proxies. */
  readonly gatewayId: string;
  readonly config: GatewayConfig;
  readonly stats: GatewayStats;
  /** The cached route of a meeting, if any (no coordinator call). */
  cachedRoute(meetingId: string): Route | undefined;
  close(): Promise<void>;
}

const leveled = new WeakMap<FastifyBaseLogger, Map<string, FastifyBaseLogger>>();
/** `parent`, or one child of it per level (a route's logLevel), made once. */
function loggerAt(parent: FastifyBaseLogger, level: string | undefined): FastifyBaseLogger {
  if (!level || level === parent.level) return parent;
  let byLevel = leveled.get(parent);
  if (!byLevel) leveled.set(parent, (byLevel = new Map()));
  let child = byLevel.get(level);
  if (!child) byLevel.set(level, (child = parent.child({}, { level })));
  return child;
}

/** RFC 9112 §3.2: an HTTP/1.1 request without Host gets 400. (Node checks it unless told not to; see startGateway.) */
function lacksHost(req: IncomingMessage): boolean {
  return req.httpVersion === "1.1" && req.headers.host === undefined;
}

function splitHostPort(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(":");
  return { host: listen.slice(0, i).replace(/^\[(.*)\]$/, "$1"), port: Number(listen.slice(i + 1)) };
}

function sendRoute(reply: FastifyReply, route: CachedRoute): FastifyReply {
  route.json ??= routeJson(route);
  return reply.header("content-type", "application/json; charset=utf-8").send(route.json);
}

/** The connection itself failed (the client reset it, or stopped reading until a write timed out), not the request. */
function isSocketLoss(err: NodeJS.ErrnoException): boolean {
  return err.code === "ECONNRESET" || err.code === "EPIPE" || err.code === "ETIMEDOUT";
}

/** Builds the gateway and listens; see the order above. */
export async function startGateway(config: GatewayConfig, logger?: Logger): Promise<Gateway> {
  const log = (logger ?? pino({ level: config.logLevel })).child({ component: "gateway" });
  // Read first: a wrong certificate file stops the start before anything listens.
  const security = config.security ? loadClientSecurity(config.security) : PLAINTEXT;
  const client = new CoordinatorClient(config.coordinators, { deadlineMs: ROUTE_DEADLINE_MS, attemptTimeoutMs: ROUTE_ATTEMPT_MS, retryBaseMs: 50, retryMaxMs: 500, security });
  const cache = new RouteCache();
  const probe = new QuorumProbe(client, log);
  // The gauges read the WebSocket proxy, created below, only when scraped.
  const metrics: GatewayMetrics = new GatewayMetrics({ cacheSize: () => cache.size, openWebSockets: () => ws.openConnections, feedRevision: () => cache.revision });
  const limiter = config.create ? new CreateLimiter(config.createPerMinute) : undefined;
  let address = "";
  // The gateway's own address (known once listening) and its members' are never a node's.
  const guard = new NodeAddressGuard({ allow: config.nodeAddressAllow, ownAddresses: () => [address, config.listen, ...config.coordinators] }, metrics, log);
  const loops = new LoopGuard(config.gatewayId ?? newGatewayId(), metrics);
  const resolver: RouteResolver = new RouteResolver(cache, client, limiter, metrics, log, () => probe.proved(), guard);
  const reporter = new UpstreamReporter(client, log);
  const feed = new RouteFeed(client, cache, metrics, log);
  // HTTPS to meeting servers when their CA is given; every connection to one goes through the guard's lookup.
  const nodeCa = config.nodeCa === undefined ? undefined : readTlsFiles({ ca: config.nodeCa }, { ca: "nodeCa (--node-ca)", cert: "", key: "" })?.ca;
  const upstream = {
    scheme: nodeCa ? ("https" as const) : ("http" as const),
    lookup: guard.lookup,
    ca: nodeCa,
    agent: nodeCa ? new HttpsAgent({ lookup: guard.lookup, ca: nodeCa }) : new HttpAgent({ lookup: guard.lookup }),
  };
  const ws: WebSocketProxy = new WebSocketProxy(resolver, reporter, metrics, log, { ...config, upstream });
  // Read before listening: a wrong certificate file stops the start.
  const ownTls = config.tls ? readTlsFiles({ cert: config.tls.cert, key: config.tls.key }, { ca: "", cert: "tlsCert (--tls-cert)", key: "tlsKey (--tls-key)" }) : undefined;
  /** Connections with a request being answered (from its head until its response closes), and that response. */
  const answering = new WeakMap<Socket, ServerResponse>();

  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    // No per-request log lines, and no per-request child logger: the hot path allocates little.
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: (parent, _bindings, opts) => loggerAt(parent, opts.level),
    bodyLimit: config.maxBodyBytes,
    // Node answers an HTTP/1.1 request without Host itself, with an empty
    // 400 that is not JSON (found by test/fuzz-gateway.test.ts); the
    // onRequest hook below refuses it instead, as API.md's errors are.
    // The server is made here so the same limits hold with HTTPS (--tls-cert) as without.
    serverFactory: (handler) => {
      const limits = { maxHeaderSize: MAX_HEADER_BYTES, requireHostHeader: false };
      return ownTls ? createHttpsServer({ ...limits, cert: ownTls.cert, key: ownTls.key }, handler) : createHttpServer(limits, handler);
    },
    routerOptions: { maxParamLength: 1024 },
    forceCloseConnections: true,
    clientErrorHandler: (err: NodeJS.ErrnoException, socket: Socket) => {
      const inFlight = answering.get(socket);
      // A reset in the middle of a request often reads as an early end (the kernel reports the
      // data, then EOF): both are a client gone mid-request. One in flight is counted by its route.
      const lost = isSocketLoss(err) || err.code === "HPE_INVALID_EOF_STATE";
      if (lost && !inFlight) metrics.countClientDisconnect("other", "request_head");
      if (isSocketLoss(err) || socket.destroyed) return;
      // An answer already under way on this connection cannot be followed by another.
      if (inFlight?.headersSent) {
        socket.destroy();
        return;
      }
      const answer =
        err.code === "HPE_HEADER_OVERFLOW"
          ? new HeadersTooLargeError(`request headers exceed ${MAX_HEADER_BYTES} bytes`)
          : err.code === "ERR_HTTP_REQUEST_TIMEOUT"
            ? new RequestTimeoutError("the request did not arrive in time")
            : new MalformedRequestError(`malformed HTTP request (${err.code ?? err.message})`);
      writeSocketError(socket, answer);
    },
    frameworkErrors: (err, _request, reply) => sendError(reply, err),
  });

  // Proxied bodies are passed on as bytes, whatever their type; fastify's limit gives 413.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));
  app.setErrorHandler((err, request, reply) => {
    const e = toHttpError(err);
    if (e.status >= 500 && e.code === "internal") request.log.error({ err, url: request.url }, "request failed");
    // Answered while the body is still arriving (413): the connection closes after the answer, in a way the client reads it.
    if (!request.raw.complete) {
      reply.header("connection", "close");
      closeGracefullyAfterAnswer(request.raw.socket);
    }
    sendError(reply, err);
  });
  app.setNotFoundHandler((request, reply) => {
    sendError(reply, new RouteNotFoundError(`no route for ${request.method} ${request.url.slice(0, 200)}; meeting traffic goes under /meetings/{meetingId}`));
  });
  app.addHook("onRequest", (request, reply, done) => {
    if (lacksHost(request.raw)) {
      sendError(reply, new MalformedRequestError("an HTTP/1.1 request must have a Host header"));
      return;
    }
    if (request.url.startsWith("/meetings/")) {
      // What is proxied carries this gateway's mark; what already carries a gateway's is not proxied again.
      const loop = loops.refusal(request.headers);
      if (loop) return sendError(reply, loop);
      loops.markRequest(request.raw.headers);
    }
    done();
  });
  // Likewise an Expect header Node does not know: its own answer is an empty 417.
  app.server.on("checkExpectation", (req: IncomingMessage, res: ServerResponse) => {
    const e = new ExpectationFailedError(`cannot meet "Expect: ${String(req.headers.expect).slice(0, 100)}"; only 100-continue is supported`);
    res.writeHead(e.status, { "content-type": "application/json; charset=utf-8", connection: "close" }).end(errorBody(e.code, e.message));
  });
  // A client that asks before sending its body (curl does, above 1 MiB) learns at once that it is too large.
  app.server.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => {
    const declared = Number(req.headers["content-length"]);
    if (declared > config.maxBodyBytes) {
      metrics.countRequest("proxy", 413);
      const e = new BodyTooLargeError(`the request body of ${declared} bytes exceeds the limit of ${config.maxBodyBytes} bytes`);
      // Should it send the body anyway (curl does after a second), it is read and dropped.
      closeGracefullyAfterAnswer(req.socket);
      res.writeHead(e.status, { "content-type": "application/json; charset=utf-8", connection: "close" }).end(errorBody(e.code, e.message));
      return;
    }
    res.writeContinue();
    app.server.emit("request", req, res);
  });
  app.addHook("onResponse", (request, reply, done) => {
    metrics.countRequest(request.routeOptions.config.kind ?? "other", reply.statusCode);
    done();
  });

  app.get("/route/*", { config: { kind: "route" } }, (request: FastifyRequest, reply: FastifyReply) => {
    const found = resolver.locate(parseRouteUrl(request.url), request.ip);
    if (found instanceof Promise) return found.then((route) => sendRoute(reply, route));
    return sendRoute(reply, found);
  });

  app.get("/healthz", async (_request, reply) => {
    if (!probe.healthy()) {
      const age = probe.ageMs();
      throw new NoQuorumError(
        `no coordinator quorum answered ${Number.isFinite(age) ? `for ${Math.round(age)} ms` : "yet"}${probe.lastError ? `: ${probe.lastError}` : ""}`,
      );
    }
    return reply.header("cache-control", "no-store").send({ status: "ok", quorum: true, lastProofAgeMs: Math.round(probe.ageMs()) });
  });

  app.get("/metrics", { onRequest: operatorGate("/metrics", config.metricsAccess, config.operatorToken, metrics) }, async (_request, reply) => {
    reply.header("content-type", metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  const dashboard = new DashboardSource(
    client,
    () => ({
      address,
      healthy: probe.healthy(),
      createEnabled: config.create,
      cachedRoutes: cache.size,
      feedRevision: cache.revision,
      feedMember: feed.member ?? null,
      openWebSockets: ws.openConnections,
    }),
    () => cache.all(),
  );
  app.get("/dashboard.json", { onRequest: operatorGate("/dashboard.json", config.operatorPages, config.operatorToken, metrics) }, async (_request, reply) => {
    reply.header("cache-control", "no-store");
    return dashboard.get();
  });
  app.get("/", { onRequest: operatorGate("the dashboard", config.operatorPages, config.operatorToken, metrics) }, async (_request, reply) => {
    const nonce = randomBytes(16).toString("base64");
    reply
      .header("content-type", "text/html; charset=utf-8")
      .header("cache-control", "no-store")
      .header("content-security-policy", `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'unsafe-inline'; connect-src 'self'`)
      .header("x-content-type-options", "nosniff");
    return renderDashboard(await dashboard.get(), nonce);
  });

  // reply-from warns on every failed upstream attempt; the proxy counts and reports those itself.
  const proxyLogLevel: LevelWithSilent = config.logLevel === "silent" || config.logLevel === "fatal" ? config.logLevel : "error";
  await registerHttpProxy(app, { resolver, reporter, metrics, logger: log, options: { ...config, logLevel: proxyLogLevel, upstream } });
  app.server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const loop = req.url?.startsWith("/meetings/") ? loops.refusal(req.headers) : undefined;
    if (loop) {
      // An upgrade socket has no error listener of Node's: a reset while answering must not end the process.
      socket.on("error", (err) => log.debug({ err }, "websocket client socket failed"));
      metrics.countRequest("websocket", loop.status);
      writeSocketError(socket, loop);
      return;
    }
    loops.markRequest(req.headers);
    ws.handleUpgrade(req, socket, head);
  });
  app.server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    answering.set(req.socket, res);
    res.once("close", () => answering.delete(req.socket));
  });

  feed.start();
  probe.start();
  const { host, port } = splitHostPort(config.listen);
  try {
    await app.listen({ host, port });
  } catch (err) {
    await feed.stop();
    await probe.stop();
    client.close();
    throw err;
  }
  const bound = app.server.address();
  address = bound && typeof bound === "object" ? `${bound.family === "IPv6" ? `[${bound.address}]` : bound.address}:${bound.port}` : config.listen;
  const scheme = ownTls ? "https" : "http";
  log.info(
    { address, scheme, gatewayId: loops.gatewayId, coordinators: config.coordinators, create: config.create, operatorPages: config.operatorPages, metrics: config.metricsAccess, nodes: upstream.scheme },
    "gateway listening",
  );

  let closing: Promise<void> | undefined;
  return {
    address,
    scheme,
    gatewayId: loops.gatewayId,
    config,
    stats: {
      get cachedRoutes() { return cache.size; },
      get feedRevision() { return cache.revision; },
      get feedBatches() { return feed.batches; },
      get feedMember() { return feed.member; },
      get routeLookups() { return resolver.asked; },
      get upstreamReports() { return reporter.sent; },
      get openWebSockets() { return ws.openConnections; },
      get healthy() { return probe.healthy(); },
    },
    cachedRoute: (meetingId) => {
      const r = cache.get(meetingId);
      return r && { meetingId: r.meetingId, nodeId: r.nodeId, address: r.address, epoch: r.epoch };
    },
    close: () => {
      closing ??= (async () => {
        // The feed and the probe may be sleeping between attempts: closing the client wakes them.
        const loops = Promise.all([feed.stop(), probe.stop()]);
        ws.close();
        await app.close();
        upstream.agent.destroy();
        client.close();
        await loops;
        log.info({ address }, "gateway closed");
      })();
      return closing;
    },
  };
}
