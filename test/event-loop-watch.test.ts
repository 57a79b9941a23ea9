/**
 * The member's event-loop watch: a blocked loop is logged with where the
 * time went, so an operator can tell a member busy computing from one the
 * host did not run (or that sat in a blocking system call).
 */
import { describe, expect, it } from "vitest";
import { watchEventLoop } from "../src/member/event-loop-watch.js";

interface Warning {
  blockedMs: number;
  cpuMs: number;
  gcMs: number;
  applied: number;
}

function watched(block: () => void): Promise<Warning[]> {
  const warnings: Warning[] = [];
  const stop = watchEventLoop({ warn: (fields: object) => void warnings.push(fields as Warning) }, () => ({ applied: 7, commit: 9, snapshotIndex: 0 }), 300);
  return new Promise((resolve) => {
    setTimeout(() => {
      block();
      // The watch's timer is overdue now and fires at the loop's next turn
      // of timers: stop as soon as it has warned (however late that turn
      // comes on a loaded machine), so no later stall is counted with it.
      const since = performance.now();
      const check = (): void => {
        if (warnings.length > 0 || performance.now() - since > 10_000) {
          stop();
          resolve(warnings);
        } else setTimeout(check, 10);
      };
      setTimeout(check, 0);
    }, 150);
  });
}

describe("event-loop watch", () => {
  it("logs a loop kept busy by JavaScript, with the CPU it used", async () => {
    const warnings = await watched(() => {
      const until = performance.now() + 700;
      while (performance.now() < until) Math.sqrt(Math.random());
    });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.blockedMs).toBeGreaterThanOrEqual(300);
    expect(warnings[0]!.applied).toBe(7);
    // Generous: a shared machine may take some of the 700 ms away.
    expect(warnings[0]!.cpuMs).toBeGreaterThan(150);
  });

  it("logs a loop that waited without computing, with far less CPU than time blocked", async () => {
    const warnings = await watched(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 700));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.blockedMs).toBeGreaterThanOrEqual(300);
    expect(warnings[0]!.cpuMs).toBeLessThan(warnings[0]!.blockedMs / 2);
  });
});
