/**
 * Who may see the gateway's operator pages. The dashboard (`/`) and
 * `/dashboard.json` show every member's and meeting server's internal
 * address and the ids of recently moved meetings (which may work as
 * invitations); `/metrics` shows request counts and the process's memory,
 * CPU and Node.js version. Each is registered with `operatorGate(...)` as
 * its onRequest hook, under one of these settings:
 *
 *   off       404: the page is not served at all
 *   loopback  only clients connecting from this host (127.0.0.0/8, ::1);
 *             a reverse proxy on this host counts as such a client
 *   token     only with the operator token: "Authorization: Bearer <token>",
 *             or HTTP Basic with the token as the password (any user name),
 *             so a browser can ask for it; 401 with a Basic challenge
 *             otherwise. Over plain HTTP the token crosses the network in
 *             clear: serve HTTPS (--tls-cert) beyond loopback
 *   open      anyone who reaches the port
 *
 * `/route/{id}` and `/healthz` stay public, as API.md has them.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyReply, FastifyRequest, onRequestHookHandler } from "fastify";
import { isLoopbackHost } from "../security/listen-policy.js";
import { parseBearer } from "../security/tokens.js";
import type { PageAccess } from "./config.js";
import { OperatorPageForbiddenError, OperatorTokenRequiredError, RouteNotFoundError } from "./errors.js";
import type { GatewayMetrics } from "./metrics.js";
import { sendError } from "./send-error.js";

const REALM = 'Basic realm="convene operator pages", charset="UTF-8"';

function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

/** The token a request presents: a bearer token, or the password of HTTP Basic. */
export function presentedToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const bearer = parseBearer(authorization);
  if (bearer !== undefined) return bearer;
  const basic = /^Basic +([A-Za-z0-9+/=]+)$/i.exec(authorization.trim());
  if (!basic) return undefined;
  const decoded = Buffer.from(basic[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon < 0 ? undefined : decoded.slice(colon + 1);
}

/**
 * The onRequest hook that lets a request for operator page `page` through
 * under `access`, or answers it (404, 403 or 401, JSON) and counts it.
 */
export function operatorGate(page: string, access: PageAccess, operatorToken: string | undefined, metrics: GatewayMetrics): onRequestHookHandler {
  const expected = operatorToken === undefined ? undefined : digest(operatorToken);
  const refuse = (reply: FastifyReply, err: Error): void => {
    metrics.operatorPagesRefused.labels(page).inc();
    sendError(reply, err);
  };
  return (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    switch (access) {
      case "open":
        return done();
      case "off":
        return refuse(reply, new RouteNotFoundError(`${page} is turned off on this gateway (operatorPages/metricsAccess off)`));
      case "loopback": {
        const from = request.raw.socket.remoteAddress ?? "";
        if (isLoopbackHost(from)) return done();
        return refuse(reply, new OperatorPageForbiddenError(`${page} is served only to clients on the gateway's own host (operatorPages/metricsAccess loopback); the gateway's operator can open it with a token (token)`));
      }
      case "token": {
        const token = presentedToken(request.headers.authorization);
        if (token !== undefined && expected !== undefined && timingSafeEqual(digest(token), expected)) return done();
        reply.header("www-authenticate", REALM);
        return refuse(reply, new OperatorTokenRequiredError(`${page} needs the gateway's operator token: "Authorization: Bearer <token>", or the token as the password of HTTP Basic`));
      }
    }
  };
}
