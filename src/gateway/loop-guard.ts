/**
 * Loop detection: every request a gateway proxies (HTTP and WebSocket
 * upgrades, under /meetings/) carries the gateway's mark in the standard
 * Via header (RFC 9110 §7.6.3), `Via: 1.1 <gateway id> (convene-gateway)`,
 * added to whatever Via the request had. A request that arrives already
 * carrying a convene gateway's mark is refused with 508 Loop Detected
 * (JSON, counted in convene_gateway_loops_refused_total), not proxied:
 *
 * - its own mark (mark="self"): the request came back through this very
 *   gateway, e.g. a node registered the gateway's own address by a name
 *   the address policy cannot see through;
 * - another gateway's mark (mark="other_gateway"): refused too. Gateways
 *   proxy only to meeting servers, never to each other, so a request that
 *   passed one gateway and reaches another went through a node address
 *   that points at a gateway. Members cannot refuse such an address (they
 *   do not know where gateways listen), and with N gateways, refusing only
 *   one's own mark would let a request bounce through all N (each hop
 *   holding a socket) before one of them saw itself. Refusing at the second
 *   gateway bounds every loop at two hops. The price: a convene gateway
 *   cannot sit behind another convene gateway, which no deployment needs.
 *
 * Clients can forge a mark; that only gets their own request refused.
 * Each gateway's id is random per process unless configured (gatewayId),
 * and is only ever compared, never trusted.
 */
import { randomBytes } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { LoopDetectedError } from "./errors.js";
import type { GatewayMetrics } from "./metrics.js";

/** The Via comment that marks a convene gateway. */
const MARK_COMMENT = "(convene-gateway)";

/** A new gateway id: "gw-" and 8 random hex digits. */
export function newGatewayId(): string {
  return `gw-${randomBytes(4).toString("hex")}`;
}

/** The received-by of every convene gateway mark in a Via value (entries are comma-separated). */
export function conveneMarks(via: string | string[] | undefined): string[] {
  if (via === undefined) return [];
  const marks: string[] = [];
  for (const entry of ([] as string[]).concat(via).join(",").split(",")) {
    const parts = entry.trim().split(/\s+/);
    // received-protocol received-by [comment]
    if (parts.length >= 3 && parts.slice(2).join(" ") === MARK_COMMENT) marks.push(parts[1]!);
  }
  return marks;
}

export class LoopGuard {
  /** What this gateway adds to Via. */
  readonly mark: string;

  constructor(
    readonly gatewayId: string,
    private readonly metrics: GatewayMetrics,
  ) {
    this.mark = `1.1 ${gatewayId} ${MARK_COMMENT}`;
  }

  /** The refusal of a request whose headers already carry a convene gateway's mark; undefined when it may be proxied. */
  refusal(headers: IncomingHttpHeaders): LoopDetectedError | undefined {
    const marks = conveneMarks(headers.via);
    if (marks.length === 0) return undefined;
    const self = marks.includes(this.gatewayId);
    this.metrics.loopsRefused.labels(self ? "self" : "other_gateway").inc();
    return new LoopDetectedError(
      self
        ? `this request already passed this gateway (${this.gatewayId}): its meeting's host address leads back here; not proxied again`
        : `this request already passed convene gateway ${marks[0]!.slice(0, 80)}: gateways proxy only to meeting servers, so its meeting's host address leads to a gateway; not proxied`,
    );
  }

  /** Adds this gateway's mark to the request's Via, so the next hop (and this gateway, if it comes back) sees it. */
  markRequest(headers: IncomingHttpHeaders): void {
    const via = headers.via;
    headers.via = via === undefined || via === "" ? this.mark : `${via}, ${this.mark}`;
  }
}
