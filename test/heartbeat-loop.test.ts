/**
 * The agent's heartbeat loop on virtual time, against a coordinator whose
 * answers take a set time: one beat at a time, and a tick that finds a beat
 * in flight sent as soon as that beat is answered, so a slow coordinator
 * hears the node as often as it answers (not every second interval, where
 * its failure detector suspects the node).
 */
import { describe, expect, it } from "vitest";
import type { CoordinatorConnection } from "../src/node-agent/coordinator-connection.js";
import { type HeartbeatHost, HeartbeatLoop } from "../src/node-agent/heartbeat-loop.js";
import { VirtualScheduler } from "../src/time/virtual-scheduler.js";

const INTERVAL = 500;

/** A loop whose every beat is answered (or refused, `fail`) `latencyMs()` after it is sent; records when each was sent. */
function loopWith(latencyMs: () => number, fail = false) {
  const scheduler = new VirtualScheduler(0);
  const sent: number[] = [];
  let inFlight = 0;
  let mostInFlight = 0;
  let mayBeat = true;
  const connection = {
    unary: () =>
      new Promise((resolve, reject) => {
        sent.push(scheduler.now());
        mostInFlight = Math.max(mostInFlight, ++inFlight);
        scheduler.setTimeout(() => {
          inFlight--;
          if (fail) reject(new Error("UNAVAILABLE"));
          else resolve({ lease_ttl_ms: 1500, draining: false });
        }, latencyMs());
      }),
  } as unknown as CoordinatorConnection;
  const host: HeartbeatHost = {
    nodeId: "m1",
    capacity: 10,
    rpcTimeoutMs: 2000,
    mayBeat: () => mayBeat,
    generation: () => 1,
    activeMeetings: () => 0,
    loadSample: () => undefined,
    answered: () => undefined,
    failed: () => undefined,
  };
  const loop = new HeartbeatLoop(connection, host, scheduler);
  return {
    scheduler,
    loop,
    sent,
    mostInFlight: () => mostInFlight,
    gaps: () => sent.slice(1).map((t, i) => t - sent[i]!),
    setMayBeat: (v: boolean) => (mayBeat = v),
  };
}

describe("HeartbeatLoop", () => {
  it("beats every interval when answers are quick", async () => {
    const t = loopWith(() => 20);
    t.loop.start(INTERVAL, 1500);
    await t.scheduler.advance(5_000);
    expect(t.sent).toEqual(Array.from({ length: 10 }, (_, i) => (i + 1) * INTERVAL));
  });

  it("sends a tick missed while a beat was in flight as soon as that beat is answered, one beat at a time", async () => {
    const t = loopWith(() => 700);
    t.loop.start(INTERVAL, 1500);
    await t.scheduler.advance(10_000);
    // Every 700 ms (the answer's time), never two intervals apart.
    expect(t.gaps().length).toBeGreaterThan(10);
    expect(new Set(t.gaps())).toEqual(new Set([700]));
    expect(t.mostInFlight()).toBe(1);
  });

  it("keeps one beat at a time and no faster than the interval whatever the answers' times", async () => {
    let n = 0;
    const latencies = [100, 900, 1_600, 30, 499, 501, 1_000, 2_000, 5];
    const t = loopWith(() => latencies[n++ % latencies.length]!);
    t.loop.start(INTERVAL, 1500);
    await t.scheduler.advance(60_000);
    expect(t.mostInFlight()).toBe(1);
    for (const [i, gap] of t.gaps().entries()) {
      // A beat follows the previous one by its answer's time (if that was longer than an interval), or by up to an interval.
      const latency = latencies[i % latencies.length]!;
      expect(gap).toBeGreaterThanOrEqual(latency);
      expect(gap).toBeLessThanOrEqual(Math.max(latency, INTERVAL));
    }
  });

  it("catches up after a failed beat too, and not at all after stop()", async () => {
    const t = loopWith(() => 800, true);
    t.loop.start(INTERVAL, 1500);
    await t.scheduler.advance(2_000);
    expect(t.sent).toEqual([500, 1_300]);
    t.loop.stop();
    await t.scheduler.advance(5_000);
    expect(t.sent).toEqual([500, 1_300]);
  });

  it("sends no catch-up beat while the host says not to beat", async () => {
    const t = loopWith(() => 800);
    t.loop.start(INTERVAL, 1500);
    await t.scheduler.advance(600);
    t.setMayBeat(false);
    await t.scheduler.advance(5_000);
    expect(t.sent).toEqual([500]);
  });
});
