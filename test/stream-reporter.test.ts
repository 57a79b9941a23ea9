/**
 * A member's stream reports reach the leader even when one is lost on the
 * way: a report the leader never answers is replaced by the whole table
 * once its deadline passes, and a later report that the leader answers
 * with `resync` (it saw a number skipped) makes the member send its whole
 * table at once. The leader's side of that answer is in
 * failure-detector.test.ts and node-liveness.test.ts.
 */
import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import type { FailureDetector } from "../src/coordinator/service/failure-detector.js";
import type { StreamReport } from "../src/coordinator/service/node-streams.js";
import { StreamReporter } from "../src/coordinator/service/stream-reporter.js";
import type { RaftDriver } from "../src/raft-runtime/driver.js";
import { VirtualScheduler } from "../src/time/virtual-scheduler.js";

/** A follower that knows leader n1. */
function follower(): RaftDriver {
  const raft = Object.assign(new EventEmitter(), { id: "n2", isLeader: () => false, status: () => ({ lead: "n1" }) });
  return raft as unknown as RaftDriver;
}

interface Sent {
  readonly report: StreamReport;
  readonly timeoutMs: number;
  answer(value: unknown): void;
  fail(err: Error): void;
}

function reporter(timeoutMs = 500) {
  const clock = new VirtualScheduler();
  const sent: Sent[] = [];
  const forward = (report: StreamReport, t: number) =>
    new Promise<unknown>((answer, fail) => sent.push({ report, timeoutMs: t, answer, fail }));
  const r = new StreamReporter(follower(), {} as FailureDetector, forward, clock, timeoutMs);
  return { r, clock, sent };
}

describe("StreamReporter", () => {
  it("gives each report the deadline it was made with, and a report lost past it is replaced by the whole table", async () => {
    const { r, clock, sent } = reporter(500);
    r.local.opened("a", 1);
    r.local.opened("b", 1);
    expect(sent.map((s) => [s.report.resync, s.timeoutMs])).toEqual([[false, 500], [false, 500]]);
    sent[0]!.answer({ resync: false });
    sent[1]!.fail(new Error("DEADLINE_EXCEEDED")); // what the forwarder's deadline does to a lost report
    await clock.advance(199);
    expect(sent).toHaveLength(2);
    await clock.advance(1);
    const table = sent[2]!.report;
    expect(table.resync).toBe(true);
    expect(table.counts.map((c) => c.nodeId).sort()).toEqual(["a", "b"]);
    r.stop();
  });

  it("sends its whole table at once when the leader answers that a report is missing", async () => {
    const { r, clock, sent } = reporter();
    r.local.opened("a", 1);
    r.local.opened("b", 1); // suppose "a" was lost: the leader sees a skipped number
    sent[1]!.answer({ resync: true });
    await clock.advance(0);
    expect(sent).toHaveLength(3);
    expect(sent[2]!.report.resync).toBe(true);
    expect(sent[2]!.report.counts.map((c) => c.nodeId).sort()).toEqual(["a", "b"]);
    // An ordinary answer asks for nothing more.
    sent[2]!.answer({ resync: false });
    sent[0]!.answer({});
    await clock.advance(1000);
    expect(sent).toHaveLength(3);
    r.stop();
  });
});
