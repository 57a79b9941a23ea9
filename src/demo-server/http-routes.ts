/**
 * The demo server's HTTP side (fastify): the chat page, the room as JSON,
 * the redirect to the trailing slash, /healthz, and JSON errors for
 * everything else. WebSocket upgrades never reach these routes (the
 * upgrade handler takes them from the Node server), so a plain GET of
 * .../ws gets 426.
 *
 * A request for a meeting not held waits up to `assignmentWaitMs` for its
 * ASSIGNED (RoomRegistry.waitFor), then answers 421 not_here.
 */
import { createServer as createHttpServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { type ErrorBody, badId, notHere } from "./http-answers.js";
import type { LiveRoom } from "./live-room.js";
import { renderMeetingPage } from "./meeting-page.js";
import { parseMeetingPath } from "./meeting-path.js";
import type { RoomRegistry } from "./room-registry.js";

export interface HttpContext {
  readonly nodeId: string;
  readonly pid: number;
  readonly registry: RoomRegistry;
  readonly assignmentWaitMs: number;
  readonly log: Pick<Logger, "warn" | "error">;
  /** HTTPS: the certificate and key (PEM); plain HTTP without. */
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer };
}

function fail(reply: FastifyReply, status: number, body: ErrorBody): FastifyReply {
  return reply.code(status).header("cache-control", "no-store").send(body);
}

/** Builds the app (not listening yet); the caller attaches the upgrade handler to `app.server`. */
export function buildHttpApp(ctx: HttpContext): FastifyInstance {
  const app = Fastify({
    // HTTPS when a certificate is given; the upgrade handler works on either server.
    serverFactory: (handler) => (ctx.tls ? createHttpsServer({ cert: ctx.tls.cert, key: ctx.tls.key }, handler) : createHttpServer(handler)),
    logger: false,
    // Ids are at most 128 characters; the router's own limit must not refuse them first.
    routerOptions: { maxParamLength: 1024 },
    bodyLimit: 16 * 1024,
    // Keep-alive connections would hold close() open; a stopping server drops them.
    forceCloseConnections: true,
    return503OnClosing: true,
  });

  app.get("/healthz", async (_req, reply) =>
    reply.header("cache-control", "no-store").send({ nodeId: ctx.nodeId, pid: ctx.pid, meetings: ctx.registry.size, meetingIds: ctx.registry.ids() }),
  );

  app.all("/meetings/*", async (req, reply) => meetingRequest(ctx, req, reply));

  app.setNotFoundHandler((req, reply) => {
    fail(reply, 404, { error: "not_found", message: `no route for ${req.method} ${req.url.split("?")[0]!.slice(0, 200)}` });
  });

  app.setErrorHandler((err: { statusCode?: number; code?: string; message?: string }, req, reply) => {
    const status = typeof err.statusCode === "number" && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) ctx.log.error({ err, url: req.url }, "request failed");
    fail(reply, status, { error: status >= 500 ? "internal" : (err.code ?? "bad_request").toLowerCase(), message: err.message ?? "request failed" });
  });

  return app;
}

async function meetingRequest(ctx: HttpContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const target = parseMeetingPath(req.url);
  if (!target) return fail(reply, 404, { error: "not_found", message: "not a meeting path" });
  if (target.kind === "bad-id") return fail(reply, 400, badId(target.message));
  if (req.method !== "GET" && req.method !== "HEAD") {
    return fail(reply.header("allow", "GET, HEAD"), 405, { error: "method_not_allowed", message: `${req.method} is not allowed here; use GET` });
  }
  const { meetingId } = target;
  switch (target.kind) {
    case "bare":
      // Relative, so it holds behind any proxy; "./" because an id like "a:b" alone would read as a URL scheme.
      // The id's characters are all path-safe, so it goes as is (the gateway sees the same path).
      return reply.code(308).header("location", `./${meetingId}/${target.query}`).send();
    case "other":
      return fail(reply, 404, { error: "not_found", message: `meeting ${meetingId} has no ${req.url.split("?")[0]!.slice(0, 200)}` });
    case "ws":
      return fail(reply.header("upgrade", "websocket").header("connection", "Upgrade"), 426, {
        error: "upgrade_required",
        message: "this path is a WebSocket; send an upgrade request",
      });
    case "page":
    case "state": {
      const live = await heldRoom(ctx, meetingId, reply);
      if (!live) return fail(reply, 421, notHere(meetingId, ctx.nodeId));
      if (target.kind === "state") {
        const room = live.room;
        return reply.header("cache-control", "no-store").send({
          meetingId,
          nodeId: ctx.nodeId,
          epoch: room.epoch,
          history: room.history(),
          participants: room.participants(),
        });
      }
      const page = renderMeetingPage({ meetingId, nodeId: ctx.nodeId, pid: ctx.pid, epoch: live.epoch });
      return reply.headers(page.headers).send(page.html);
    }
    default:
      throw new Error(`invariant: unhandled meeting path ${JSON.stringify(target satisfies never)}`);
  }
}

/** The held room, waiting for its assignment; the wait ends early when the client hangs up. */
function heldRoom(ctx: HttpContext, meetingId: string, reply: FastifyReply): Promise<LiveRoom | undefined> {
  const held = ctx.registry.get(meetingId);
  if (held) return Promise.resolve(held);
  const hangUp = new AbortController();
  const onClose = (): void => hangUp.abort();
  reply.raw.once("close", onClose);
  return ctx.registry.waitFor(meetingId, ctx.assignmentWaitMs, hangUp.signal).finally(() => reply.raw.off("close", onClose));
}
