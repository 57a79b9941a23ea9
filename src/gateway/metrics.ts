/**
 * The gateway's Prometheus metrics, in a registry of its own (two gateways in
 * one process, as in the tests, must not share counters). The counters of
 * every request (requests by status, cache hits and misses) are plain
 * numbers on the hot path, handed to prom-client when /metrics is scraped.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { registerProcessMetrics } from "../metrics/process-metrics.js";

/** Which kind of request a status is counted under. */
export type RequestKind = "route" | "proxy" | "websocket" | "other";

/**
 * Where an exchange was when one side's connection went away (reset, or
 * closed before the exchange was complete):
 * - request_head: before a whole request head arrived (idle keep-alive connections included);
 * - request_body: while a proxied request's body was arriving;
 * - awaiting_response: the request was complete, its answer not begun;
 * - response_body: while an answer was being relayed;
 * - awaiting_upgrade: a WebSocket upgrade being routed or waiting for its host's 101;
 * - upgraded: an open WebSocket (a reset; a close after the close handshake is not counted).
 */
export type DisconnectStage = "request_head" | "request_body" | "awaiting_response" | "response_body" | "awaiting_upgrade" | "upgraded";

export class GatewayMetrics {
  readonly registry = new Registry();
  /** Answered requests by kind, then status code. */
  private readonly requestCounts = new Map<RequestKind, Map<number, number>>();
  /** Route lookups answered from the cache, and those that asked the coordinator. */
  cacheHits = 0;
  cacheMisses = 0;
  readonly upstreamLatency: Histogram<"outcome">;
  readonly routeChangesApplied: Counter;
  readonly feedResets: Counter;
  readonly feedReconnects: Counter;
  readonly upstreamFailures: Counter<"reason">;
  readonly retries: Counter<"reason">;
  readonly createsLimited: Counter;
  readonly nodeAddressesRefused: Counter<"reason">;
  readonly loopsRefused: Counter<"mark">;
  readonly operatorPagesRefused: Counter<"page">;
  /** Client connections lost mid-exchange, by kind (proxy, websocket, other) and stage. */
  readonly clientDisconnects: Counter<"kind" | "stage">;
  /** Meeting-server connections lost after their answer had begun, by kind and stage. */
  readonly upstreamDisconnects: Counter<"kind" | "stage">;

  constructor(gauges: { cacheSize: () => number; openWebSockets: () => number; feedRevision: () => number }) {
    const registers = [this.registry];
    const counts = this.requestCounts;
    const read = (): { hits: number; misses: number } => ({ hits: this.cacheHits, misses: this.cacheMisses });
    new Counter({
      name: "convene_gateway_requests_total",
      help: "HTTP requests answered by the gateway, by kind (route, proxy, websocket, other) and status code",
      labelNames: ["kind", "code"],
      registers,
      collect() {
        this.reset();
        for (const [kind, byCode] of counts) for (const [code, n] of byCode) this.inc({ kind, code: String(code) }, n);
      },
    });
    this.upstreamLatency = new Histogram({
      name: "convene_gateway_upstream_latency_seconds",
      help: "Time from sending a proxied request to a meeting server until its response headers (or failure)",
      labelNames: ["outcome"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    new Counter({
      name: "convene_gateway_route_cache_hits_total",
      help: "Route lookups answered from the cache",
      registers,
      collect() {
        this.reset();
        this.inc(read().hits);
      },
    });
    new Counter({
      name: "convene_gateway_route_cache_misses_total",
      help: "Route lookups that asked the coordinator (GetRoute)",
      registers,
      collect() {
        this.reset();
        this.inc(read().misses);
      },
    });
    this.routeChangesApplied = new Counter({
      name: "convene_gateway_route_changes_applied_total",
      help: "Route changes from the coordinator's feed that altered the cache",
      registers,
    });
    this.feedResets = new Counter({ name: "convene_gateway_route_feed_resets_total", help: "Full route tables received (reset batches)", registers });
    this.feedReconnects = new Counter({ name: "convene_gateway_route_feed_reconnects_total", help: "Times the route feed stream was opened again", registers });
    this.upstreamFailures = new Counter({
      name: "convene_gateway_upstream_failures_total",
      help: "Proxied requests a meeting server failed (refused, reset, timeout, misdirected)",
      labelNames: ["reason"],
      registers,
    });
    this.retries = new Counter({
      name: "convene_gateway_retries_total",
      help: "Proxied requests sent again after re-resolving their route",
      labelNames: ["reason"],
      registers,
    });
    this.createsLimited = new Counter({ name: "convene_gateway_creates_rate_limited_total", help: "Meeting creations refused by the per-client limit", registers });
    this.nodeAddressesRefused = new Counter({
      name: "convene_gateway_node_address_refused_total",
      help: "Requests not proxied because the meeting's host address is refused by the node address policy (unspecified, link_local, multicast, own_address, ip_shorthand, not_allowed)",
      labelNames: ["reason"],
      registers,
    });
    this.loopsRefused = new Counter({
      name: "convene_gateway_loops_refused_total",
      help: "Requests refused because they already passed a convene gateway (mark: self or other_gateway)",
      labelNames: ["mark"],
      registers,
    });
    this.operatorPagesRefused = new Counter({
      name: "convene_gateway_operator_pages_refused_total",
      help: "Requests for the operator pages (dashboard, dashboard.json, metrics) refused by their access setting",
      labelNames: ["page"],
      registers,
    });
    this.clientDisconnects = new Counter({
      name: "convene_gateway_client_disconnects_total",
      help: "Client connections reset or closed before their exchange was complete, by kind (proxy, websocket, other) and stage",
      labelNames: ["kind", "stage"],
      registers,
    });
    this.upstreamDisconnects = new Counter({
      name: "convene_gateway_upstream_disconnects_total",
      help: "Meeting-server connections reset or closed after their answer had begun (mid-body, or an open WebSocket), by kind and stage",
      labelNames: ["kind", "stage"],
      registers,
    });
    new Gauge({ name: "convene_gateway_route_cache_size", help: "Routes in the cache", registers, collect() { this.set(gauges.cacheSize()); } });
    new Gauge({ name: "convene_gateway_websockets_open", help: "WebSocket connections being proxied", registers, collect() { this.set(gauges.openWebSockets()); } });
    new Gauge({ name: "convene_gateway_route_feed_revision", help: "Coordinator revision the route cache is at", registers, collect() { this.set(gauges.feedRevision()); } });
    registerProcessMetrics(this.registry, "convene_gateway_");
  }

  /** Counts a client connection lost mid-exchange (see DisconnectStage). */
  countClientDisconnect(kind: RequestKind, stage: DisconnectStage): void {
    this.clientDisconnects.labels(kind, stage).inc();
  }

  /** Counts a meeting-server connection lost after its answer had begun. */
  countUpstreamDisconnect(kind: RequestKind, stage: DisconnectStage): void {
    this.upstreamDisconnects.labels(kind, stage).inc();
  }

  /** Counts one answered request. */
  countRequest(kind: RequestKind, code: number): void {
    let byCode = this.requestCounts.get(kind);
    if (!byCode) this.requestCounts.set(kind, (byCode = new Map()));
    byCode.set(code, (byCode.get(code) ?? 0) + 1);
  }
}
