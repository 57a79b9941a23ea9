/**
 * The leader's move watchdog on virtual time, with a stub coordinator: it
 * proposes each expiry and due drain at its deadline, retries a proposal
 * that failed, and sleeps (no timer at all) while nothing is pending.
 */
import { describe, expect, it } from "vitest";
import type { CoordinatorReplica } from "../src/coordinator/service/coordinator-replica.js";
import { MoveWatchdog } from "../src/coordinator/service/move-watchdog.js";
import { VirtualScheduler } from "../src/time/virtual-scheduler.js";

interface Move {
  meetingId: string;
  epoch: number;
  deadlineMs: number;
}

const CHECK_EVERY_MS = 100;

function watchdog() {
  const clock = new VirtualScheduler();
  const start = clock.now();
  const moves: Move[] = [];
  /** Draining nodes: deadline, and whether another node could take one of its meetings. */
  const drains = new Map<string, { deadlineMs: number; movable: boolean }>();
  const proposed: string[] = [];
  let failNext = 0;
  const coordinator = {
    local: () => ({
      pendingMoves: () => moves.map((m) => ({ ...m, ownerId: "a" })),
      dueDrains: (now: number) => [...drains].filter(([, d]) => d.deadlineMs <= now && d.movable).map(([id]) => id),
      nextDrainDeadline: (now: number) => {
        const later = [...drains.values()].map((d) => d.deadlineMs).filter((t) => t > now);
        return later.length > 0 ? Math.min(...later) : undefined;
      },
    }),
    propose: async (p: { type: string; meetingId?: string; nodeId?: string }) => {
      const what = `${p.type} ${p.meetingId ?? p.nodeId}@${clock.now() - start}`;
      if (failNext > 0) {
        failNext--;
        proposed.push(`${what} failed`);
        throw new Error("not committed");
      }
      proposed.push(what);
      // Applied: the move or drain is done, and the state changed.
      if (p.type === "expireMove") moves.splice(moves.findIndex((m) => m.meetingId === p.meetingId), 1);
      if (p.type === "drainDue") drains.delete(p.nodeId!);
      w.stateChanged();
      return {};
    },
  } as unknown as CoordinatorReplica;
  const w = new MoveWatchdog(coordinator, { checkEveryMs: CHECK_EVERY_MS, moveTimeoutMs: 1000 }, clock);
  return {
    w,
    clock,
    proposed,
    at: (ms: number) => start + ms,
    addMove: (m: Move) => {
      moves.push(m);
      w.stateChanged();
    },
    drains,
    failNext: (n: number) => (failNext = n),
  };
}

describe("MoveWatchdog", () => {
  it("has no timer while nothing is pending: an idle leader is not woken", async () => {
    const { w, clock } = watchdog();
    w.startLeading();
    await clock.advance(CHECK_EVERY_MS); // its first look
    expect(clock.pending).toBe(0);
    await clock.advance(10_000);
    w.stopLeading();
  });

  it("expires a move at its deadline, learned from a change of state, and sleeps again after", async () => {
    const { w, clock, proposed, at, addMove } = watchdog();
    w.startLeading();
    await clock.advance(500);
    addMove({ meetingId: "m1", epoch: 3, deadlineMs: at(2500) });
    addMove({ meetingId: "m2", epoch: 1, deadlineMs: at(4000) });
    await clock.advance(1999);
    expect(proposed).toEqual([]);
    await clock.advance(1);
    expect(proposed).toEqual(["expireMove m1@2500"]);
    await clock.advance(1500);
    expect(proposed).toEqual(["expireMove m1@2500", "expireMove m2@4000"]);
    await clock.advance(CHECK_EVERY_MS);
    expect(clock.pending).toBe(0);
    w.stopLeading();
  });

  it("retries a proposal that failed every checkEveryMs", async () => {
    const { w, clock, proposed, at, addMove, failNext } = watchdog();
    w.startLeading();
    failNext(2);
    addMove({ meetingId: "m1", epoch: 1, deadlineMs: at(300) });
    await clock.advance(1000);
    expect(proposed).toEqual(["expireMove m1@300 failed", "expireMove m1@400 failed", "expireMove m1@500"]);
    w.stopLeading();
  });

  it("hands a drain over at its deadline, and one past it as soon as a change of state leaves room", async () => {
    const { w, clock, proposed, at, drains } = watchdog();
    drains.set("a", { deadlineMs: at(1000), movable: true });
    drains.set("b", { deadlineMs: at(1200), movable: false });
    w.startLeading();
    await clock.advance(3000);
    expect(proposed).toEqual(["drainDue a@1000"]);
    drains.get("b")!.movable = true; // a node with room registered: an apply
    w.stateChanged();
    await clock.advance(CHECK_EVERY_MS);
    expect(proposed).toEqual(["drainDue a@1000", "drainDue b@3100"]);
    w.stopLeading();
  });

  it("does nothing once it no longer leads", async () => {
    const { w, clock, proposed, at, addMove } = watchdog();
    w.startLeading();
    addMove({ meetingId: "m1", epoch: 1, deadlineMs: at(300) });
    w.stopLeading();
    w.stateChanged();
    await clock.advance(1000);
    expect(proposed).toEqual([]);
    expect(clock.pending).toBe(0);
  });
});
