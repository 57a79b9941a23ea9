/**
 * The process's own metrics (CPU, memory, event loop lag, GC), made once
 * per process and prefix and shared by every registry that exposes them.
 * prom-client's collectDefaultMetrics starts a GC observer and an
 * event-loop monitor that are never stopped, and the observer holds the
 * registry it was given: one call per MemberMetrics or GatewayMetrics kept
 * every member and gateway ever made in the process alive, with all its
 * gauges read (the whole-product simulation grew 1.6 MiB per seed, tests
 * that start many gateways likewise). The shared metrics point at no
 * instance registry, so a finished instance is collected.
 *
 * The event-loop lag histogram samples every 250 ms, not prom-client's
 * default 10 ms: its timer woke an idle member 100 times a second, about
 * 1% of a core on this machine (each wake of an idle process costs
 * 90–190 µs, timer-wake.mts), more than the member's own work at idle. A
 * block of the loop still shows in the maximum; the member's own watch
 * (event-loop-watch.ts) samples at the same rate.
 */
import { Registry, collectDefaultMetrics } from "prom-client";

const byPrefix = new Map<string, Registry>();

/** How often the event-loop lag histogram samples (see above). */
const EVENT_LOOP_SAMPLE_MS = 250;

/** Registers this process's metrics, named with `prefix`, in `registry`. */
export function registerProcessMetrics(registry: Registry, prefix: string): void {
  let shared = byPrefix.get(prefix);
  if (!shared) {
    shared = new Registry();
    collectDefaultMetrics({ register: shared, prefix, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
    byPrefix.set(prefix, shared);
  }
  for (const { name } of shared.getMetricsAsArray()) {
    const metric = shared.getSingleMetric(name);
    if (metric) registry.registerMetric(metric);
  }
}
