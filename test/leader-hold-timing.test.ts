/**
 * The leader hold (src/member/leader-hold.ts) on virtual time: when a held
 * call is sent, when it gives up, how a refusal is resent, and that any
 * number of held calls put one listener on the driver. test/leader-hold
 * checks the same behaviour through real member processes.
 */
import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { HOLD_MARGIN_MS, LEADER_HOLD_MS, LeaderHold, type HeldCall, holdsForLeader } from "../src/member/leader-hold.js";
import { VirtualScheduler, flushMicrotasks } from "../src/time/virtual-scheduler.js";

class FakeDriver extends EventEmitter {
  address = "";
  elect(address: string): void {
    this.address = address;
    this.emit("leader");
  }
  leaderAddress(): string {
    return this.address;
  }
}

const NOT_LEADER = { code: 14, details: "not the leader; no leader is known" };

function setup() {
  const clock = new VirtualScheduler();
  const driver = new FakeDriver();
  const hold = new LeaderHold(driver, clock);
  const sent: { at: number; address: string }[] = [];
  /** A call whose sends go to `answer`; settles into `result`. */
  const start = (answer: (address: string) => Promise<string>, overrides: Partial<HeldCall<string>> = {}) => {
    const result: { value?: string; error?: unknown; at?: number } = {};
    void hold
      .call<string>({
        send: (address) => {
          sent.push({ at: clock.now() - t0, address });
          return answer(address);
        },
        refusedAsNotLeader: (err) => err === NOT_LEADER,
        noLeader: () => new Error("no leader is known"),
        hold: true,
        callerDeadlineMs: Infinity,
        cancelled: () => false,
        ...overrides,
      })
      .then(
        (value) => Object.assign(result, { value, at: clock.now() - t0 }),
        (error: unknown) => Object.assign(result, { error, at: clock.now() - t0 }),
      );
    return result;
  };
  const t0 = clock.now();
  /** Runs virtual time to `ms` after the start, settling promises between timers. */
  const runTo = async (ms: number) => {
    await flushMicrotasks();
    while (clock.runNext(t0 + ms)) await flushMicrotasks();
    await clock.advanceTo(t0 + ms);
    await flushMicrotasks();
  };
  return { clock, driver, hold, sent, start, runTo, t0 };
}

describe("leader hold", () => {
  it("sends at once when a leader is known", async () => {
    const s = setup();
    s.driver.address = "n1:7000";
    const r = s.start(async (a) => `ran on ${a}`);
    await s.runTo(0);
    expect(r).toEqual({ value: "ran on n1:7000", at: 0 });
    expect(s.hold.counts).toEqual({ held: 0, resent: 0 });
  });

  it("holds a call while no leader is known and sends it the moment one is elected", async () => {
    const s = setup();
    const r = s.start(async (a) => `ran on ${a}`);
    await s.runTo(1_200);
    expect(r.at).toBeUndefined();
    expect(s.sent).toEqual([]);
    s.driver.elect("n2:7000");
    await s.runTo(1_200);
    expect(r).toEqual({ value: "ran on n2:7000", at: 1_200 });
    expect(s.hold.counts.held).toBe(1);
  });

  it(`answers "no leader" after ${LEADER_HOLD_MS} ms when none is elected`, async () => {
    const s = setup();
    const r = s.start(async () => "unreachable");
    await s.runTo(LEADER_HOLD_MS - 1);
    expect(r.at).toBeUndefined();
    await s.runTo(LEADER_HOLD_MS);
    expect(r.at).toBe(LEADER_HOLD_MS);
    expect(String(r.error)).toContain("no leader is known");
    expect(s.sent).toEqual([]);
  });

  it("never holds past the caller's deadline (it ends the margin before it)", async () => {
    const s = setup();
    const r = s.start(async () => "unreachable", { callerDeadlineMs: s.t0 + 1_000 });
    await s.runTo(LEADER_HOLD_MS);
    expect(r.at).toBe(1_000 - HOLD_MARGIN_MS);
    expect(String(r.error)).toContain("no leader is known");
  });

  it("does not hold a call that asks not to be held", async () => {
    const s = setup();
    const r = s.start(async () => "unreachable", { hold: false });
    await s.runTo(0);
    expect(r.at).toBe(0);
    expect(String(r.error)).toContain("no leader is known");
  });

  it("does not hold a heartbeat: answered at once, its agent tries a member that knows the leader (sim-system seed 810274)", async () => {
    expect(holdsForLeader("Heartbeat")).toBe(false);
    for (const method of ["Register", "SaveCheckpoint", "WatchAssignments", "GetRoute", "DrainNode", "Deregister"]) expect(holdsForLeader(method), method).toBe(true);
    const s = setup();
    const beat = s.start(async () => "unreachable", { hold: holdsForLeader("Heartbeat") });
    const save = s.start(async () => "saved", { hold: holdsForLeader("SaveCheckpoint") });
    await s.runTo(0);
    expect(beat.at).toBe(0);
    expect(String(beat.error)).toContain("no leader is known");
    expect(save.at).toBeUndefined();
  });

  it("sends a call its leader refused as not leading to the next leader, within the hold", async () => {
    const s = setup();
    s.driver.address = "n1:7000";
    const r = s.start(async (a) => {
      if (a === "n1:7000") throw NOT_LEADER;
      return `ran on ${a}`;
    });
    await s.runTo(100);
    s.driver.elect("n3:7000");
    await s.runTo(100);
    expect(r).toEqual({ value: "ran on n3:7000", at: 100 });
    expect(s.sent).toEqual([{ at: 0, address: "n1:7000" }, { at: 100, address: "n3:7000" }]);
    expect(s.hold.counts.resent).toBe(1);
  });

  it("answers the refusal itself once the hold is over", async () => {
    const s = setup();
    s.driver.address = "n1:7000";
    const r = s.start(async () => {
      throw NOT_LEADER;
    });
    await s.runTo(LEADER_HOLD_MS + 500);
    expect(r.error).toBe(NOT_LEADER);
    expect(r.at).toBe(LEADER_HOLD_MS);
    // Tried again about every 250 ms while the hold lasted, never after it.
    expect(s.sent.length).toBeGreaterThan(5);
    expect(s.sent.every((x) => x.at <= LEADER_HOLD_MS)).toBe(true);
  });

  it("passes any other failure to the caller at once", async () => {
    const s = setup();
    s.driver.address = "n1:7000";
    const failure = { code: 3, details: "meeting_id must not be empty" };
    const r = s.start(async () => {
      throw failure;
    });
    await s.runTo(0);
    expect(r).toEqual({ error: failure, at: 0 });
    expect(s.sent).toHaveLength(1);
  });

  it("puts one listener on the driver however many calls it holds, and none once they are done", async () => {
    const s = setup();
    const results = Array.from({ length: 500 }, () => s.start(async (a) => a));
    await s.runTo(500);
    expect(s.driver.listenerCount("leader")).toBe(1);
    s.driver.elect("n1:7000");
    await s.runTo(500);
    expect(results.every((r) => r.value === "n1:7000" && r.at === 500)).toBe(true);
    expect(s.driver.listenerCount("leader")).toBe(0);
  });
});
