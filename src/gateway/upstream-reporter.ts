/**
 * Tells the coordinator that a meeting server failed the gateway
 * (RouteFeed.ReportUpstreamFailure): a hint that lets the leader check that
 * node sooner; the leader never declares a node dead on a gateway's word.
 * Fire-and-forget, and at most once per node per second, so that a burst of
 * failed requests is one report, not thousands.
 */
import type { Logger } from "pino";
import type { CoordinatorClient } from "./coordinator-client.js";
import type { Route } from "./route-cache.js";

export const REPORT_EVERY_MS = 1000;

export class UpstreamReporter {
  private readonly lastReportMs = new Map<string, number>();
  /** Reports sent (tests read it). */
  sent = 0;

  constructor(
    private readonly client: CoordinatorClient,
    private readonly logger: Logger,
  ) {}

  report(route: Route, reason: string, nowMs: number = Date.now()): void {
    const last = this.lastReportMs.get(route.nodeId);
    if (last !== undefined && nowMs - last < REPORT_EVERY_MS) return;
    this.lastReportMs.set(route.nodeId, nowMs);
    if (this.lastReportMs.size > 10_000) this.prune(nowMs);
    this.sent++;
    this.client
      .unary("RouteFeed", "ReportUpstreamFailure", { node_id: route.nodeId, address: route.address, reason }, { deadlineMs: 2000 })
      .catch((err: unknown) => this.logger.debug({ err, node: route.nodeId }, "ReportUpstreamFailure failed (a hint only)"));
  }

  private prune(nowMs: number): void {
    for (const [node, at] of this.lastReportMs) if (nowMs - at >= REPORT_EVERY_MS) this.lastReportMs.delete(node);
  }
}
