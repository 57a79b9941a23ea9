/**
 * The agent's heartbeat loop on virtual time, against a coordinator whose
 * answers take a set time: one beat at a time, and a tick that finds a beat
 * in flight sent as soon as that beat is answered, so a slow coordinator
 * hears the node as often as it answers (not every second interval, where
 * its failure detector suspects the node).
 */
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import type { AgentLink } from "../src/node-agent/agent-link.js";
import { CoordinatorConnection } from "../src/node-agent/coordinator-connection.js";
import { CoordinatorCallError } from "../src/node-agent/errors.js";
import { type HeartbeatHost, HeartbeatLoop } from "../src/node-agent/heartbeat-loop.js";
import { VirtualScheduler } from "../src/time/virtual-scheduler.js";

const INTERVAL = 500;

/** A host of node m1 that ignores what the beats bring. */
function hostWith(rpcTimeoutMs: number, mayBeat: () => boolean): HeartbeatHost {
  return {
    nodeId: "m1",
    capacity: 10,
    rpcTimeoutMs,
    mayBeat,
    generation: () => 1,
    activeMeetings: () => 0,
    loadSample: () => undefined,
    answered: () => undefined,
    failed: () => undefined,
  };
}

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
  const loop = new HeartbeatLoop(connection, hostWith(2000, () => mayBeat), scheduler);
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

describe("HeartbeatLoop: each beat's deadline follows the coordinator's answers", () => {
  /** A coordinator answering every beat after `latencyMs()`; a beat whose deadline comes first fails DEADLINE_EXCEEDED (the answer still comes, unseen). */
  function timedLoop(latencyMs: () => number) {
    const scheduler = new VirtualScheduler(0);
    const outcomes: { deadline: number; answered: boolean }[] = [];
    const connection = {
      unary: (_method: string, _req: unknown, opts: { timeoutMs: number }) =>
        new Promise((resolve, reject) => {
          const took = latencyMs();
          if (took <= opts.timeoutMs) {
            scheduler.setTimeout(() => {
              outcomes.push({ deadline: opts.timeoutMs, answered: true });
              resolve({ lease_ttl_ms: 1500, draining: false });
            }, took);
          } else {
            scheduler.setTimeout(() => {
              outcomes.push({ deadline: opts.timeoutMs, answered: false });
              reject(new CoordinatorCallError("Heartbeat", "a:1", grpc.status.DEADLINE_EXCEEDED, "no answer"));
            }, opts.timeoutMs);
          }
        }),
    } as unknown as CoordinatorConnection;
    const loop = new HeartbeatLoop(connection, hostWith(1000, () => true), scheduler);
    return { scheduler, loop, outcomes };
  }

  it("a third of the lease while answers are quick", async () => {
    const t = timedLoop(() => 20);
    t.loop.start(INTERVAL, 1500);
    await t.scheduler.advance(5_000);
    expect(t.loop.timeoutMs()).toBe(500);
    expect(t.outcomes.every((o) => o.answered && o.deadline === 500)).toBe(true);
  });

  it("a coordinator slower than that: one beat given up, then its deadline grows and every beat is answered", async () => {
    const t = timedLoop(() => 800);
    t.loop.start(INTERVAL, 1500);
    await t.scheduler.advance(20_000);
    const given = t.outcomes.filter((o) => !o.answered);
    expect(given).toHaveLength(1);
    expect(t.outcomes.length).toBeGreaterThan(15);
    expect(t.outcomes.slice(1).every((o) => o.answered)).toBe(true);
    // Three times the answer time, within the lease.
    expect(t.loop.timeoutMs()).toBe(1500);
  });

  it("answers a little slower than a third of the lease: a deadline of three times their time", async () => {
    const t = timedLoop(() => 300);
    t.loop.start(INTERVAL, 1500);
    await t.scheduler.advance(10_000);
    expect(t.outcomes.every((o) => o.answered)).toBe(true);
    expect(t.loop.timeoutMs()).toBe(900);
  });

  it("back to a third of the lease once the answers are quick again; never beyond the lease", async () => {
    let latency = 1400;
    const t = timedLoop(() => latency);
    t.loop.start(INTERVAL, 1500);
    await t.scheduler.advance(20_000);
    expect(t.loop.timeoutMs()).toBe(1500);
    latency = 10;
    await t.scheduler.advance(20_000);
    expect(t.loop.timeoutMs()).toBe(500);
  });

  it("a member that answers nothing: every deadline doubles, up to the lease", async () => {
    const t = timedLoop(() => Infinity);
    t.loop.start(INTERVAL, 1500);
    await t.scheduler.advance(30_000);
    expect(t.outcomes.slice(0, 4).map((o) => o.deadline)).toEqual([500, 1000, 1500, 1500]);
    expect(t.outcomes.every((o) => !o.answered && o.deadline <= 1500)).toBe(true);
  });

  it("a slow leader that then freezes is left within a lease: the next answer comes from another member in time", async () => {
    const scheduler = new VirtualScheduler(0);
    let frozen = false;
    const answeredAt: number[] = [];
    // The leader a:1 answers in 800 ms, then nothing once frozen; b:1 forwards to it (and names it) until
    // then, and answers in 20 ms as the new leader after.
    const link: AgentLink = {
      unary: (address, _service, _method, _request, timeoutMs, onLeaderHint) =>
        new Promise((resolve, reject) => {
          const forwards = address === "b:1" && !frozen;
          const took = address === "a:1" ? (frozen ? Infinity : 800) : forwards ? 820 : 20;
          if (took > timeoutMs) {
            scheduler.setTimeout(() => reject({ code: grpc.status.DEADLINE_EXCEEDED, details: "no answer" }), timeoutMs);
            return;
          }
          scheduler.setTimeout(() => {
            if (forwards) onLeaderHint("a:1");
            resolve({ lease_ttl_ms: 1500, draining: false });
          }, took);
        }),
      watch: () => {
        throw new Error("not used");
      },
      close: () => undefined,
    };
    const connection = new CoordinatorConnection(["a:1", "b:1"], { rpcTimeoutMs: 1000, retryBaseMs: 25, retryMaxMs: 1000, random: () => 0, link, scheduler });
    const host = { ...hostWith(1000, () => true), answered: () => void answeredAt.push(scheduler.now()) };
    const loop = new HeartbeatLoop(connection, host, scheduler);
    loop.start(INTERVAL, 1500);
    await scheduler.advance(10_000);
    expect(loop.timeoutMs()).toBe(1500);
    expect(connection.address).toBe("a:1");
    const frozeAt = scheduler.now();
    frozen = true;
    await scheduler.advance(5_000);
    const next = answeredAt.find((t) => t > frozeAt)!;
    // The beat in flight was sent at most an answer's time before the freeze; it is given up a lease after it was sent.
    expect(next - frozeAt).toBeLessThanOrEqual(1500 + 20);
    expect(connection.address).toBe("b:1");
  });
});
