/**
 * HTTP proxying of `/meetings/{id}` and below to the meeting's host, with
 * @fastify/reply-from (undici): same method, path and query; the answer
 * carries `X-Convene-Node`. Request bodies arrive buffered (at most
 * maxBodyBytes, enforced by fastify's body limit: 413), so a request can be
 * sent a second time.
 *
 * When the host fails (refuses, resets, times out) or answers 421
 * ("meeting not held here"): the coordinator is told (a hint), the route is
 * dropped and asked again once. The request goes again when that is safe:
 * - to a new host (the meeting moved) if the first never received it
 *   (refused, connect timeout, 421) or the method is idempotent;
 * - to the same host only for an idempotent request whose connection was
 *   reset (a keep-alive race), or after a short pause when it answered 421
 *   (a host learns of a new meeting a moment after the coordinator commits
 *   it); never after a refusal or a timeout.
 * When the host cannot be reached at all (refused, connect timeout,
 * unreachable) and the coordinator still names it, the request waits up to
 * moveWaitMs (by default the Retry-After it would get, so never longer than
 * retrying would take) for the route feed to bring the meeting's move, then
 * goes to the new host.
 * Otherwise, and when the second attempt fails too: 503 with Retry-After.
 * Every attempt is bounded (connect and response timeouts), so no request
 * hangs on a dead host.
 *
 * A client that goes away (reset, or closed before its answer finished) is
 * counted by the stage it left in (request_body, awaiting_response,
 * response_body), and nothing more is tried for it; a host that cuts its
 * answer short is counted too, and fastify cuts the client's connection, so
 * a truncated body never looks whole. (A request already sent to the host
 * runs on until it answers or times out: reply-from has no way to cancel it.)
 */
import type { LookupFunction } from "node:net";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import replyFrom, { type FastifyReplyFromHooks } from "@fastify/reply-from";
import type { LevelWithSilent, Logger } from "pino";
import { MalformedRequestError, UpstreamUnavailableError } from "./errors.js";
import type { GatewayMetrics } from "./metrics.js";
import { type MeetingTarget, parseMeetingUrl } from "./paths.js";
import type { CachedRoute, Route } from "./route-cache.js";
import type { RouteResolver } from "./route-resolver.js";
import { sendError } from "./send-error.js";
import type { UpstreamReporter } from "./upstream-reporter.js";

export interface HttpProxyOptions {
  readonly connectTimeoutMs: number;
  readonly responseTimeoutMs: number;
  /** How long a request whose host is gone waits for the meeting's move (GatewayConfig.moveWaitMs). */
  readonly moveWaitMs: number;
  /** Level of the proxy route's request logger (which reply-from logs through). */
  readonly logLevel: LevelWithSilent;
  /** How meeting servers are reached: scheme, the node address guard's DNS lookup, the CA of their HTTPS certificates. */
  readonly upstream?: { readonly scheme: "http" | "https"; readonly lookup?: LookupFunction; readonly ca?: Buffer };
}

/** Why an attempt failed, and whether the host can have received the request. */
interface Failure {
  readonly reason: "refused" | "connect_timeout" | "reset" | "timeout" | "unreachable" | "misdirected" | "error" | "bad_request";
  readonly delivered: boolean;
  readonly detail: string;
}

/** Pause before asking the same host again after a 421 while the coordinator still routes there. */
export const MISDIRECTED_RETRY_MS = 200;

/** Failures that say the host is gone, not slow: the request never reached it. */
const HOST_GONE = new Set<Failure["reason"]>(["refused", "connect_timeout", "unreachable"]);

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]);

/** Classifies what undici (through reply-from) failed with. */
function classify(error: Error): Failure {
  const cause = (error.cause ?? error) as { code?: unknown; message?: unknown; name?: unknown };
  const code = typeof cause.code === "string" ? cause.code : "";
  const detail = code || (typeof cause.message === "string" ? cause.message : String(cause));
  switch (code) {
    case "ECONNREFUSED":
      return { reason: "refused", delivered: false, detail };
    case "UND_ERR_CONNECT_TIMEOUT":
      return { reason: "connect_timeout", delivered: false, detail };
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "EADDRNOTAVAIL":
      return { reason: "unreachable", delivered: false, detail };
    case "ECONNRESET":
    case "EPIPE":
    case "UND_ERR_SOCKET":
    case "UND_ERR_CLOSED":
      return { reason: "reset", delivered: true, detail };
    // undici refused to send the request as the client made it: nothing reached the host, which is not to blame.
    case "UND_ERR_INVALID_ARG":
    case "UND_ERR_NOT_SUPPORTED":
      return { reason: "bad_request", delivered: false, detail: typeof cause.message === "string" ? cause.message : detail };
    case "UND_ERR_HEADERS_TIMEOUT":
    case "UND_ERR_BODY_TIMEOUT":
      return { reason: "timeout", delivered: true, detail };
    default:
      return { reason: "error", delivered: true, detail };
  }
}

/** This module decides about second attempts; reply-from's own retries (e.g. on 503) stay off. */
function noRetry(): null {
  return null;
}

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1) describe the client's connection to
 * the gateway, not the gateway's to the host. reply-from passes the
 * request's on; undici then refuses an Upgrade or Keep-Alive header
 * (UND_ERR_INVALID_ARG), which the gateway took for a failed host: a 503
 * for an ordinary HTTP/1.0 client, and a hint to the coordinator that a
 * healthy node was down (found by test/fuzz-gateway.test.ts).
 */
const HOP_BY_HOP = ["connection", "keep-alive", "proxy-connection", "upgrade", "transfer-encoding", "te", "trailer", "http2-settings"];

/** The request headers a meeting server sees: no hop-by-hop ones, plus X-Forwarded-* (the client's address, host and scheme). */
const forwardedHeaders: NonNullable<FastifyReplyFromHooks["rewriteRequestHeaders"]> = (req, headers) => {
  const listed = String(headers["connection"] ?? "").toLowerCase().split(",").map((t) => t.trim());
  for (const name of [...HOP_BY_HOP, ...listed]) delete headers[name];
  // Met here already: the gateway answered 100 Continue and has the whole body (undici refuses the header).
  delete headers["expect"];
  const forwardedFor = req.headers["x-forwarded-for"];
  headers["x-forwarded-for"] = forwardedFor ? `${String(forwardedFor)}, ${req.ip}` : req.ip;
  headers["x-forwarded-proto"] = req.protocol;
  if (req.headers.host) headers["x-forwarded-host"] = req.headers.host;
  return headers;
};

function sameRoute(a: Route, b: Route): boolean {
  return a.nodeId === b.nodeId && a.epoch === b.epoch && a.address === b.address;
}

export async function registerHttpProxy(
  app: FastifyInstance,
  deps: { resolver: RouteResolver; reporter: UpstreamReporter; metrics: GatewayMetrics; logger: Logger; options: HttpProxyOptions },
): Promise<void> {
  const { resolver, reporter, metrics, logger, options } = deps;
  await app.register(replyFrom, {
    undici: {
      connections: 128,
      pipelining: 1,
      connect: { timeout: options.connectTimeoutMs, lookup: options.upstream?.lookup, ...(options.upstream?.ca ? { ca: options.upstream.ca, rejectUnauthorized: true } : {}) },
      headersTimeout: options.responseTimeoutMs,
      bodyTimeout: options.responseTimeoutMs,
    },
    // The gateway closes its upstream connections when it closes.
    destroyAgent: true,
    disableCache: true,
    disableRequestLogging: true,
  });

  /** Requests whose body has arrived (their handler runs), and those whose host broke its answer off. */
  const handling = new WeakSet<FastifyRequest>();
  const upstreamBroke = new WeakSet<FastifyRequest>();

  /**
   * One attempt at `route`; `retried` once the route was asked again.
   * `waited` once the request waited for a move: the attempt at the new host
   * starts afresh (it may need the pause after a 421), but never waits again.
   */
  const attempt = (request: FastifyRequest, reply: FastifyReply, target: MeetingTarget, route: CachedRoute, retried: boolean, waited = false): void => {
    const method = request.method;
    const started = performance.now();
    const body = request.body;
    const origin = `${options.upstream?.scheme ?? "http"}://${route.address}`;
    const q = target.url.indexOf("?");
    const path = q === -1 ? target.url : target.url.slice(0, q);

    const fail = (failure: Failure): void => {
      // The client left (counted by watchClient): nobody is waiting for a second attempt or an error answer.
      if (reply.raw.destroyed) return;
      if (failure.reason === "bad_request") {
        sendError(reply, new MalformedRequestError(`the request cannot be forwarded to meeting ${route.meetingId}'s host as it is: ${failure.detail}`));
        return;
      }
      metrics.upstreamLatency.labels(failure.reason).observe((performance.now() - started) / 1000);
      metrics.upstreamFailures.labels(failure.reason).inc();
      reporter.report(route, failure.detail);
      if (logger.isLevelEnabled("debug")) logger.debug({ meetingId: route.meetingId, node: route.nodeId, failure, retried }, "upstream failed");
      if (retried) {
        // Sent again to the same host (a pooled connection was reset, or a 421) and now it is gone:
        // the second attempt was safe, so is one more at the meeting's next host.
        if (!waited && HOST_GONE.has(failure.reason) && options.moveWaitMs > 0) awaitMoveThenAttempt(request, reply, target, route, failure);
        else sendError(reply, unavailable(route, failure, true));
        return;
      }
      Promise.resolve(resolver.reresolve(route, request.ip)).then(
        (next) => {
          const moved = !sameRoute(next, route);
          // The host is gone and the request never reached it: safe to send to wherever the meeting goes next.
          if (!moved && !waited && HOST_GONE.has(failure.reason) && options.moveWaitMs > 0) {
            awaitMoveThenAttempt(request, reply, target, next, failure);
            return;
          }
          const misdirected = failure.reason === "misdirected";
          const safe = moved ? !failure.delivered || IDEMPOTENT.has(method) : misdirected || (failure.reason === "reset" && IDEMPOTENT.has(method));
          if (!safe) {
            sendError(reply, unavailable(route, failure, false));
            return;
          }
          metrics.retries.labels(moved ? "moved" : failure.reason).inc();
          // Still the coordinator's route, yet "not held here": the host has not yet heard of
          // its new meeting (its assignment stream lags the commit). Give it a moment.
          if (!moved && misdirected) setTimeout(() => attempt(request, reply, target, next, true), MISDIRECTED_RETRY_MS);
          else attempt(request, reply, target, next, true);
        },
        (err: unknown) => sendError(reply, err),
      );
    };

    reply.from(path, {
      getUpstream: () => origin,
      retryDelay: noRetry,
      ...(body === undefined || body === null
        ? {}
        : method === "GET" || method === "HEAD"
          ? { body: null }
          : { body, contentType: request.headers["content-type"] ?? "application/octet-stream" }),
      rewriteRequestHeaders: forwardedHeaders,
      onResponse: (_req, rep, res) => {
        if (res.statusCode === 421) {
          // "Not held here": the route is stale. Nothing of this answer reaches the client.
          res.stream.resume();
          for (const name of Object.keys(rep.getHeaders())) rep.removeHeader(name);
          fail({ reason: "misdirected", delivered: false, detail: `${route.nodeId} answered 421 Misdirected Request` });
          return;
        }
        metrics.upstreamLatency.labels("ok").observe((performance.now() - started) / 1000);
        rep.header("x-convene-node", route.nodeId);
        // The host cut its answer short: fastify destroys the client's connection (a cut body must not look whole).
        res.stream.once("error", () => {
          upstreamBroke.add(request);
          metrics.countUpstreamDisconnect("proxy", "response_body");
        });
        rep.send(res.stream);
      },
      onError: (_rep, { error }) => fail(classify(error)),
    });
  };

  /** The host is gone and the coordinator has not moved the meeting yet: wait for the move (bounded), then send the request there. */
  const awaitMoveThenAttempt = (request: FastifyRequest, reply: FastifyReply, target: MeetingTarget, stale: CachedRoute, failure: Failure): void => {
    resolver.awaitMove(stale, options.moveWaitMs).then((moved) => {
      // The client may have given up meanwhile.
      if (reply.raw.destroyed || reply.sent) return;
      if (!moved) {
        sendError(reply, unavailable(stale, failure, false, options.moveWaitMs));
        return;
      }
      metrics.retries.labels("moved").inc();
      attempt(request, reply, target, moved, false, true);
    }, (err: unknown) => sendError(reply, err));
  };

  /** A response that closes before it finished lost its client, unless the host broke it off. */
  const watchClient = (request: FastifyRequest, reply: FastifyReply, done: () => void): void => {
    const res = reply.raw;
    res.once("close", () => {
      if (res.writableFinished || upstreamBroke.has(request)) return;
      metrics.countClientDisconnect("proxy", !handling.has(request) ? "request_body" : res.headersSent ? "response_body" : "awaiting_response");
    });
    done();
  };

  app.all("/meetings/*", { config: { kind: "proxy" }, logLevel: options.logLevel, onRequest: watchClient }, async (request, reply) => {
    handling.add(request);
    const target = parseMeetingUrl(request.url);
    const found = resolver.lookup(target.meetingId, request.ip);
    const route = found instanceof Promise ? await found : found;
    attempt(request, reply, target, route, false);
    return reply;
  });
}

function unavailable(route: Route, failure: Failure, retried: boolean, waitedMs = 0): UpstreamUnavailableError {
  const what = failure.reason === "misdirected" ? "does not hold it (421)" : `failed (${failure.detail})`;
  const then = retried
    ? "again after its route was looked up again"
    : `and the coordinator has not moved it${waitedMs > 0 ? ` within ${waitedMs} ms` : " yet"}`;
  return new UpstreamUnavailableError(`meeting ${route.meetingId}: its host ${route.nodeId} at ${route.address} ${what}, ${then}; retry shortly`);
}
