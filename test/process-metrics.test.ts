/**
 * Every member and gateway exposes the process's own metrics, but a
 * process that makes many of them (the simulation, tests, an embedder)
 * keeps none alive once dropped: prom-client's default metrics are made
 * once per process and shared, since their GC observer is never stopped
 * and holds whatever registry it was given.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { GatewayMetrics } from "../src/gateway/metrics.js";
import { MemberMetrics } from "../src/member/member-metrics.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

async function collected(refs: WeakRef<object>[]): Promise<number> {
  for (let i = 0; i < 5; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  return refs.filter((r) => r.deref() === undefined).length;
}

/** A gateway's and a member's metrics, scraped once, then dropped: weak references to their registries and what they read. */
async function madeAndDropped(): Promise<WeakRef<object>[]> {
  // What the gauges read is what a leak would hold (a gateway's whole route cache and feed).
  const held = { bytes: new Uint8Array(1024) };
  const gateway = new GatewayMetrics({ cacheSize: () => held.bytes.length, openWebSockets: () => 0, feedRevision: () => 0 });
  await gateway.registry.metrics();
  const member = new MemberMetrics();
  await member.registry.metrics();
  return [new WeakRef(held), new WeakRef(gateway.registry), new WeakRef(member.registry)];
}

describe("the process's own metrics", () => {
  it("are exposed by every member and gateway", async () => {
    const member = await new MemberMetrics().registry.metrics();
    const gateway = await new GatewayMetrics({ cacheSize: () => 0, openWebSockets: () => 0, feedRevision: () => 0 }).registry.metrics();
    for (const name of ["process_cpu_seconds_total", "process_resident_memory_bytes", "nodejs_eventloop_lag_p99_seconds", "nodejs_gc_duration_seconds"]) {
      expect(member).toContain(`# TYPE convene_member_${name} `);
      expect(gateway).toContain(`# TYPE convene_gateway_${name} `);
    }
  });

  it("keep no dropped member's or gateway's metrics alive", async () => {
    const refs: WeakRef<object>[] = [];
    for (let i = 0; i < 20; i++) refs.push(...(await madeAndDropped()));
    expect(await collected(refs)).toBe(refs.length);
  });
});
