/**
 * The leader's failure detector on its own, on virtual time, with a stub
 * coordinator: silence past the lease is death, a broken last connection is
 * death unless the node is heard on time, extra streams closing are not,
 * and silence while this process itself was paused is not.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { CoordinatorReplica } from "../src/coordinator/service/coordinator-replica.js";
import { type DetectorBugs, FailureDetector, type FailureDetectorOptions, type Judgement, ON_TIME_SLACK } from "../src/coordinator/service/failure-detector.js";
import type { StateMachineNotice } from "../src/coordinator/coordinator-state-machine.js";
import { LocalHealth } from "../src/coordinator/service/local-health.js";
import { LocalStreams, type StreamReport } from "../src/coordinator/service/node-streams.js";
import { VirtualScheduler } from "../src/time/virtual-scheduler.js";

type Liveness = "ALIVE" | "SUSPECT" | "DEAD";

function stub(liveness: Record<string, Liveness>) {
  const proposals: string[] = [];
  const node = (nodeId: string) => ({ nodeId, generation: 1, liveness: liveness[nodeId]!, draining: false });
  const coordinator = {
    local: () => ({ listNodes: () => Object.keys(liveness).map(node), getNode: (id: string) => (id in liveness ? node(id) : undefined) }),
    propose: async (p: { nodeId: string; liveness: Liveness }) => {
      proposals.push(`${p.nodeId}:${p.liveness}`);
      liveness[p.nodeId] = p.liveness;
      return {};
    },
  } as unknown as CoordinatorReplica;
  return { coordinator, proposals };
}

const options = { leaseTtlMs: 400, heartbeatIntervalMs: 100, disconnectGraceMs: 100, checkEveryMs: 20 };

function detector(liveness: Record<string, Liveness>, opts: Partial<FailureDetectorOptions> = {}, bugs: DetectorBugs = {}) {
  const { coordinator, proposals } = stub(liveness);
  const clock = new VirtualScheduler();
  const d = new FailureDetector(coordinator, { ...options, ...opts }, clock, bugs);
  return { d, clock, proposals };
}

/** Past the leader's first lease (stream reports are then complete), with the nodes heard on time meanwhile. */
async function warmUp(d: FailureDetector, clock: VirtualScheduler, ms: number, ...nodes: string[]): Promise<void> {
  const beats = clock.setInterval(() => nodes.forEach((id) => d.heard(id, 1)), options.heartbeatIntervalMs);
  nodes.forEach((id) => d.heard(id, 1));
  await clock.advance(ms);
  clock.clearInterval(beats);
}

/** A member's stream counts, delivered to the detector at once. */
function member(id: string, d: FailureDetector, clock: VirtualScheduler): LocalStreams {
  return new LocalStreams(id, (r) => d.streamsReported(r), clock.now() * 1000);
}

describe("FailureDetector", () => {
  it("declares a silent node suspect, then dead when its lease runs out", async () => {
    const { d, clock, proposals } = detector({ a: "ALIVE" });
    d.startLeading();
    d.heard("a", 1);
    await clock.advance(600);
    d.stopLeading();
    expect(proposals).toEqual(["a:SUSPECT", "a:DEAD"]);
  });

  it("a broken last connection makes a node suspect soon and dead once the grace is over and a heartbeat is missed", async () => {
    const { d, clock, proposals } = detector({ a: "ALIVE" }, { leaseTtlMs: 5000 });
    d.startLeading();
    const n1 = member("n1", d, clock);
    await warmUp(d, clock, 5000, "a");
    n1.opened("a", 1);
    d.heard("a", 1);
    n1.closed("a", 1);
    expect(proposals).toEqual([]);
    await clock.advance(40); // a third of the grace
    expect(proposals).toEqual(["a:SUSPECT"]);
    // The grace (100) is over, but the node is not late yet (120).
    await clock.advance(70);
    expect(proposals).toEqual(["a:SUSPECT"]);
    await clock.advance(40);
    d.stopLeading();
    expect(proposals).toEqual(["a:SUSPECT", "a:DEAD"]);
  });

  it("a node heard on time lives on with no stream at all; it dies when a heartbeat is late", async () => {
    const { d, clock, proposals } = detector({ a: "ALIVE" }, { leaseTtlMs: 5000 });
    d.startLeading();
    const n1 = member("n1", d, clock);
    await warmUp(d, clock, 5000, "a");
    n1.opened("a", 1);
    n1.closed("a", 1);
    await clock.advance(40);
    expect(proposals).toEqual(["a:SUSPECT"]);
    for (let i = 0; i < 20; i++) {
      d.heard("a", 1);
      await clock.advance(options.heartbeatIntervalMs);
    }
    expect(proposals).toEqual(["a:SUSPECT", "a:ALIVE"]);
    await clock.advance(options.heartbeatIntervalMs * ON_TIME_SLACK + options.checkEveryMs);
    d.stopLeading();
    expect(proposals).toEqual(["a:SUSPECT", "a:ALIVE", "a:DEAD"]);
  });

  it("an extra stream closing leaves a node with another open stream alone, on the same member or another", async () => {
    const { d, clock, proposals } = detector({ a: "ALIVE" }, { leaseTtlMs: 5000 });
    d.startLeading();
    const [n1, n2] = [member("n1", d, clock), member("n2", d, clock)];
    await warmUp(d, clock, 5000, "a");
    n1.opened("a", 1);
    n2.opened("a", 1);
    n2.closed("a", 1);
    n1.opened("a", 1);
    n1.closed("a", 1);
    expect(d.openStreams("a", 1)).toBe(1);
    await clock.advance(1000); // silent, but within the lease
    d.stopLeading();
    expect(proposals).toEqual(["a:SUSPECT"]); // late (twice the heartbeat interval), never dead
  });

  it("reports that arrive out of order change nothing: a member's newer count wins", async () => {
    const { d, clock, proposals } = detector({ a: "ALIVE" }, { leaseTtlMs: 5000 });
    d.startLeading();
    await warmUp(d, clock, 5000, "a");
    const reports: StreamReport[] = [];
    const n2 = new LocalStreams("n2", (r) => reports.push(r), 1);
    n2.opened("a", 1);
    n2.closed("a", 1);
    n2.opened("a", 1);
    // The older "closed" arrives last: it must not override the newer "open".
    for (const i of [0, 2, 1]) d.streamsReported(reports[i]!);
    expect(d.openStreams("a", 1)).toBe(1);
    d.stopLeading();
    expect(proposals).toEqual([]);
  });

  it("a member's whole table (resync) clears what it no longer holds, even when its closing report was lost", async () => {
    const { d, clock, proposals } = detector({ a: "ALIVE" }, { leaseTtlMs: 5000 });
    d.startLeading();
    await warmUp(d, clock, 5000, "a");
    let lose = false;
    const n1 = new LocalStreams("n1", (r) => lose || d.streamsReported(r), 1);
    n1.opened("a", 1);
    lose = true;
    n1.closed("a", 1); // the node crashed; this report never arrived
    d.streamsReported(n1.resync());
    expect(d.openStreams("a", 1)).toBe(0);
    await clock.advance(options.heartbeatIntervalMs * ON_TIME_SLACK + options.checkEveryMs);
    d.stopLeading();
    expect(proposals).toEqual(["a:SUSPECT", "a:DEAD"]); // by its broken connection, long before its lease
  });

  it("a member's lost report of an opened stream is noticed at its next report, and its whole table keeps the node connected", async () => {
    // Seed 1012955 of the whole-product simulation: a's stream was on n2,
    // which crashed (its close unreported); a reopened on n3, whose report
    // was lost. When n2 restarted with an empty table, a looked
    // disconnected and was judged by the stricter rule while it lived.
    const { d, clock, proposals } = detector({ a: "ALIVE", b: "ALIVE" }, { leaseTtlMs: 5000 });
    d.startLeading();
    await warmUp(d, clock, 5000, "a", "b");
    const answers: boolean[] = [];
    let lose = false;
    const n3 = new LocalStreams("n3", (r) => lose || answers.push(d.streamsReported(r).resync), 1_000_000);
    const n2 = member("n2", d, clock);
    expect(d.streamsReported(n3.resync()).resync).toBe(false);
    n2.opened("a", 1);
    lose = true;
    n3.opened("a", 1);
    lose = false;
    n3.opened("b", 1); // the next report: a number is missing
    expect(answers).toEqual([true]);
    expect(d.streamsReported(n3.resync()).resync).toBe(false);
    // n2 restarts with nothing open.
    d.streamsReported(new LocalStreams("n2", () => undefined, (clock.now() + 1) * 1000).resync());
    expect(d.openStreams("a", 1)).toBe(1);
    const beats = clock.setInterval(() => d.heard("b", 1), options.heartbeatIntervalMs);
    await clock.advance(3 * options.heartbeatIntervalMs); // a is late, but connected: judged by its lease
    clock.clearInterval(beats);
    d.stopLeading();
    expect(proposals).toEqual(["a:SUSPECT"]);
  });

  it("a new leader trusts 'no stream left' only after its first lease, once members have resynced", async () => {
    const { d, clock, proposals } = detector({ a: "ALIVE" }, { leaseTtlMs: 400 });
    const n1 = member("n1", d, clock);
    n1.opened("a", 1); // opened under an earlier leader
    d.startLeading();
    // Another member's extra stream closes before n1's resync arrives: the
    // new leader thinks no stream is left, but may not judge by that yet.
    const n2 = member("n2", d, clock);
    n2.opened("a", 1);
    n2.closed("a", 1);
    // Heard late (but within the lease) while n1's resync is slow to come.
    const beats = clock.setInterval(() => d.heard("a", 1), options.heartbeatIntervalMs * 1.5);
    await clock.advance(350);
    d.streamsReported(n1.resync());
    await clock.advance(1000);
    clock.clearInterval(beats);
    d.stopLeading();
    expect(proposals).toEqual([]);
  });

  it("a broken stream of an older generation leaves the current one alone", async () => {
    const { d, clock, proposals } = detector({ a: "ALIVE" });
    d.startLeading();
    const beats = clock.setInterval(() => d.heard("a", 1), 100);
    await clock.advance(550);
    d.disconnected("a", 0);
    await clock.advance(300);
    clock.clearInterval(beats);
    d.stopLeading();
    expect(proposals).toEqual([]);
  });

  it("judges nobody after its own process was paused past the lease", async () => {
    const { d, clock, proposals } = detector({ a: "ALIVE", b: "ALIVE" });
    d.startLeading();
    d.heard("a", 1);
    d.heard("b", 1);
    await clock.advance(30);
    // A pause of the whole process (a large snapshot, a GC): the clock jumps, no timer ran meanwhile.
    clock.stall(600);
    // Heartbeats queued during the pause arrive right after it.
    await clock.advance(1);
    d.heard("a", 1);
    d.heard("b", 1);
    await clock.advance(150);
    d.stopLeading();
    expect(proposals).toEqual([]);
  });

  it("judges nobody by lease when most nodes go silent at once (its own overload or isolation), but still a broken connection", async () => {
    const episodes: [number, number][] = [];
    const { d, clock, proposals } = detector(
      { a: "ALIVE", b: "ALIVE", c: "ALIVE", d: "ALIVE", e: "ALIVE" },
      { onMassSilence: (overdue, live) => episodes.push([overdue, live]) },
    );
    d.startLeading();
    const n1 = member("n1", d, clock);
    n1.opened("e", 1);
    await warmUp(d, clock, 450, "a", "b", "c", "d", "e"); // past the first lease
    const beats = clock.setInterval(() => d.heard("a", 1), 50); // only a is heard from now on
    d.heard("e", 1);
    n1.closed("e", 1); // e's process died: its connection broke
    await clock.advance(600);
    expect(proposals).toEqual(["e:SUSPECT", "e:DEAD"]);
    expect(episodes).toEqual([[3, 4]]); // e was already dead: 3 of the 4 live nodes silent
    for (const id of ["b", "c", "d"]) d.heard(id, 1);
    await clock.advance(60);
    clock.clearInterval(beats);
    d.stopLeading();
    expect(proposals).toEqual(["e:SUSPECT", "e:DEAD"]);
    expect(episodes).toEqual([[3, 4], [0, 4]]);
  });

  it("gives the nodes still silent when a mass silence ends a full lease more, then judges them", async () => {
    const { d, clock, proposals } = detector({ a: "ALIVE", b: "ALIVE", c: "ALIVE", d: "ALIVE", e: "ALIVE", f: "ALIVE" });
    d.startLeading();
    await warmUp(d, clock, 450, "a", "b", "c", "d", "e", "f");
    let heard = ["a", "b"];
    const beats = clock.setInterval(() => heard.forEach((id) => d.heard(id, 1)), 50);
    await clock.advance(600); // c, d, e, f silent: 4 of 6
    expect(proposals).toEqual([]);
    heard = ["a", "b", "c", "d"]; // c and d come back: 2 of 6 silent, the episode ends
    await clock.advance(150);
    expect(proposals).toEqual([]);
    await clock.advance(230); // two intervals after the end: late
    expect(proposals).toEqual(["e:SUSPECT", "f:SUSPECT"]);
    await clock.advance(120); // a full lease (400) after the end (c and d were heard at their next beat, up to 50 ms in)
    clock.clearInterval(beats);
    d.stopLeading();
    expect(proposals).toEqual(["e:SUSPECT", "f:SUSPECT", "e:DEAD", "f:DEAD"]);
  });

  it("still declares a minority of silent nodes dead", async () => {
    const { d, clock, proposals } = detector({ a: "ALIVE", b: "ALIVE", c: "ALIVE", d: "ALIVE" });
    d.startLeading();
    const beats = clock.setInterval(() => ["a", "b", "c"].forEach((id) => d.heard(id, 1)), 50);
    await clock.advance(600);
    clock.clearInterval(beats);
    d.stopLeading();
    expect(proposals).toEqual(["d:SUSPECT", "d:DEAD"]);
  });
});

describe("FailureDetector on a saturated leader (local health)", () => {
  /** A detector whose event loop is as busy as `busy.share` says; the multiplier's changes and the judgements are kept. */
  function saturable(liveness: Record<string, Liveness>) {
    const busy = { share: 0, reads: 0 };
    const changes: number[] = [];
    const judged: Judgement[] = [];
    const t = detector(liveness, {
      loopBusyShare: () => {
        busy.reads++;
        return busy.share;
      },
      onLocalHealth: (m) => changes.push(m),
      onJudged: (j) => judged.push(j),
    });
    return { ...t, busy, changes, judged };
  }

  it("stretches the timeouts up to three times while its loop is saturated, and judges as usual again once it has room", async () => {
    const { d, clock, proposals, busy, changes, judged } = saturable({ a: "ALIVE", b: "ALIVE", c: "ALIVE", d: "ALIVE" });
    d.startLeading();
    const beats = clock.setInterval(() => ["a", "b", "c"].forEach((id) => d.heard(id, 1)), 50);
    await warmUp(d, clock, 450, "d");
    busy.share = 1;
    await clock.advance(250); // two reads, one per heartbeat interval
    expect(d.timeoutMultiplier).toBe(3);
    expect(changes).toEqual([2, 3]);
    d.heard("d", 1);
    // Usually suspect at 200 ms and dead at 400: not yet at 550.
    await clock.advance(550);
    expect(proposals).toEqual([]);
    await clock.advance(100); // 650: past 2 intervals × 3
    expect(proposals).toEqual(["d:SUSPECT"]);
    await clock.advance(600); // 1,250: past the lease × 3
    expect(proposals).toEqual(["d:SUSPECT", "d:DEAD"]);
    expect(judged.map((j) => j.timeoutMultiplier)).toEqual([3, 3]);
    // Room again: one step down per interval, the stretch kept for a stretched lease (3 × 400) after the last.
    busy.share = 0.1;
    await clock.advance(250);
    expect(changes).toEqual([2, 3, 2, 1]);
    expect(d.timeoutMultiplier).toBe(3);
    await clock.advance(1200);
    expect(d.timeoutMultiplier).toBe(1);
    // And a node gone silent now is judged at the usual times.
    clock.clearInterval(beats);
    const fewer = clock.setInterval(() => ["a", "b"].forEach((id) => d.heard(id, 1)), 50);
    d.heard("c", 1);
    await clock.advance(190);
    expect(proposals).toEqual(["d:SUSPECT", "d:DEAD"]);
    await clock.advance(30);
    clock.clearInterval(fewer);
    d.stopLeading();
    expect(proposals).toEqual(["d:SUSPECT", "d:DEAD", "c:SUSPECT"]);
  });

  it("still suspects a node whose connection breaks at once, and declares it dead after the grace and a stretched heartbeat", async () => {
    const { d, clock, proposals, busy } = saturable({ a: "ALIVE" });
    d.startLeading();
    const n1 = member("n1", d, clock);
    busy.share = 1;
    await warmUp(d, clock, 1300, "a"); // past the first lease; multiplier 3 by now
    expect(d.timeoutMultiplier).toBe(3);
    n1.opened("a", 1);
    d.heard("a", 1);
    n1.closed("a", 1);
    await clock.advance(40); // a third of the grace: unchanged by the multiplier
    expect(proposals).toEqual(["a:SUSPECT"]);
    await clock.advance(300); // 340: past the grace, not past 1.2 intervals × 3 (360)
    expect(proposals).toEqual(["a:SUSPECT"]);
    await clock.advance(40);
    d.stopLeading();
    expect(proposals).toEqual(["a:SUSPECT", "a:DEAD"]);
  });

  it("keeps the stretch for a stretched lease once it has room again: the nodes it heard late are not all declared dead at once", async () => {
    const { d, clock, proposals, busy, changes } = saturable({ a: "ALIVE", b: "ALIVE", c: "ALIVE", d: "ALIVE", e: "ALIVE" });
    d.startLeading();
    const others = clock.setInterval(() => ["b", "c", "d", "e"].forEach((id) => d.heard(id, 1)), 50);
    await warmUp(d, clock, 450, "a");
    busy.share = 1;
    await clock.advance(250);
    expect(d.timeoutMultiplier).toBe(3);
    // The saturated leader hears a only every 1,000 ms: late (2 × 100 × 3), within the stretched lease (400 × 3).
    const t = clock.now();
    d.heard("a", 1);
    const slowA = clock.setInterval(() => d.heard("a", 1), 1000);
    await clock.advance(300);
    busy.share = 0.1;
    await clock.advance(200); // two relaxed reads: down to 1, a heard 500 ms ago (past the usual lease of 400)
    expect(changes).toEqual([2, 3, 2, 1]);
    expect(proposals).toEqual([]); // judged as stretched: not even late yet
    await clock.advanceTo(t + 1600); // the stretch is kept until 1,200 ms after the last step
    expect(proposals).toEqual(["a:SUSPECT", "a:ALIVE"]); // late at 600, heard at 1,000
    await clock.advanceTo(t + 1800); // then a, heard every 1,000 ms, is past the usual lease
    expect(proposals.at(-1)).toBe("a:DEAD");
    clock.clearInterval(slowA);
    clock.clearInterval(others);
    d.stopLeading();
  });

  it("reads the busy share once per heartbeat interval, starts each term at 1, and never stretches without a meter", async () => {
    const { d, clock, busy } = saturable({ a: "ALIVE" });
    d.startLeading();
    busy.share = 1;
    await clock.advance(1020);
    expect(busy.reads).toBe(1 + 10); // once when it starts leading, then every 100 ms from its first look (20 ms in)
    expect(d.timeoutMultiplier).toBe(3);
    d.stopLeading();
    d.startLeading();
    expect(d.timeoutMultiplier).toBe(1);
    d.stopLeading();
    const plain = detector({ a: "ALIVE" });
    plain.d.startLeading();
    await plain.clock.advance(1000);
    expect(plain.d.timeoutMultiplier).toBe(1);
    plain.d.stopLeading();
  });
});

describe("LocalHealth", () => {
  it("steps up on a saturated window, down on a relaxed one, holds between, and stays within 1..max", () => {
    const h = new LocalHealth({ saturated: 0.95, relaxed: 0.8, maxMultiplier: 3 });
    const seen = [0.96, 0.9, 1, 1, 1, 0.85, 0.5, 0.2, 0.1, 0.95].map((share) => {
      h.observe(share);
      return h.multiplier;
    });
    expect(seen).toEqual([2, 2, 3, 3, 3, 3, 2, 1, 1, 2]);
    expect(new LocalHealth({ saturated: 0.95, relaxed: 0.8, maxMultiplier: 1 }).observe(1)).toBe(false);
  });
});

/**
 * Many schedules: a node that heartbeats on time keeps one stream open on
 * its home member; extra streams of its id open and close at random times
 * on random members, their reports reach the leader with random delays and
 * out of order, and the leader changes now and then (members resync).
 */
interface Schedule {
  readonly extras: readonly { member: number; openAt: number; closeAfter: number }[];
  /** When the node's own stream moves to another member (the agent's watch restart: open there, then cancel here). */
  readonly moves: readonly { at: number; to: number; cancelAfter: number }[];
  readonly delays: readonly number[];
  readonly jitter: readonly number[];
  readonly leaderChanges: readonly number[];
}

const scheduleArb: fc.Arbitrary<Schedule> = fc.record({
  extras: fc.array(fc.record({ member: fc.integer({ min: 0, max: 2 }), openAt: fc.integer({ min: 0, max: 5000 }), closeAfter: fc.integer({ min: 0, max: 800 }) }), { maxLength: 25 }),
  moves: fc.array(fc.record({ at: fc.integer({ min: 0, max: 5000 }), to: fc.integer({ min: 0, max: 2 }), cancelAfter: fc.integer({ min: 0, max: 50 }) }), { maxLength: 6 }),
  delays: fc.array(fc.integer({ min: 0, max: 60 }), { minLength: 64, maxLength: 64 }),
  jitter: fc.array(fc.integer({ min: -10, max: 10 }), { minLength: 64, maxLength: 64 }),
  leaderChanges: fc.array(fc.integer({ min: 0, max: 5000 }), { maxLength: 3 }),
});

async function runSchedule(s: Schedule, bugs: DetectorBugs = {}): Promise<string[]> {
  const { coordinator, proposals } = stub({ a: "ALIVE" });
  const clock = new VirtualScheduler();
  const opts = { leaseTtlMs: 1500, heartbeatIntervalMs: 500, disconnectGraceMs: 300, checkEveryMs: 50 };
  const d = new FailureDetector(coordinator, opts, clock, bugs);
  let k = 0;
  const deliver = (r: StreamReport): void => {
    clock.setTimeout(() => d.streamsReported(r), s.delays[k++ % s.delays.length]!);
  };
  const members = [0, 1, 2].map((i) => new LocalStreams(`n${i + 1}`, deliver, 1 + i * 1_000_000));
  d.startLeading();
  let home = 0;
  members[home]!.opened("a", 1);
  for (const m of [...s.moves].sort((x, y) => x.at - y.at)) {
    clock.setTimeout(() => {
      const from = home;
      home = m.to;
      members[m.to]!.opened("a", 1);
      clock.setTimeout(() => members[from]!.closed("a", 1), m.cancelAfter);
    }, m.at);
  }
  let beat = 0;
  const heartbeat = (): void => {
    d.heard("a", 1);
    clock.setTimeout(heartbeat, opts.heartbeatIntervalMs + s.jitter[beat++ % s.jitter.length]!);
  };
  heartbeat();
  for (const e of s.extras) {
    clock.setTimeout(() => {
      members[e.member]!.opened("a", 1);
      clock.setTimeout(() => members[e.member]!.closed("a", 1), e.closeAfter);
    }, e.openAt);
  }
  for (const at of s.leaderChanges) {
    clock.setTimeout(() => {
      d.stopLeading();
      d.startLeading();
      for (const m of members) deliver(m.resync());
    }, at);
  }
  await clock.advance(7000);
  d.stopLeading();
  return proposals;
}

describe("FailureDetector under many schedules", () => {
  it("never declares a node that heartbeats on time and keeps a stream open dead or suspect (500 schedules)", async () => {
    await fc.assert(
      fc.asyncProperty(scheduleArb, async (s) => {
        expect(await runSchedule(s)).toEqual([]);
      }),
      { numRuns: 500, seed: 16 },
    );
  });

  it("with the old rule (any closed stream suspects its node), the same schedules find a false death", async () => {
    let found = false;
    await fc.assert(
      fc.asyncProperty(scheduleArb, async (s) => {
        if ((await runSchedule(s, { anyStreamCloseSuspects: true })).includes("a:DEAD")) found = true;
      }),
      { numRuns: 300, seed: 16 },
    );
    expect(found).toBe(true);
  });
});

describe("FailureDetector: when it looks", () => {
  /** A detector whose own timer wakes are counted, and whose proposals carry the time they were made. */
  function counted(liveness: Record<string, Liveness>, opts: Partial<FailureDetectorOptions> = {}) {
    const clock = new VirtualScheduler();
    const wakes = { n: 0 };
    const scheduler = {
      ...bindScheduler(clock),
      setTimeout: (fn: () => void, ms: number) =>
        clock.setTimeout(() => {
          wakes.n++;
          fn();
        }, ms),
    };
    const at: string[] = [];
    const { coordinator } = stub(liveness);
    const propose = coordinator.propose.bind(coordinator);
    (coordinator as { propose: unknown }).propose = async (p: { nodeId: string; liveness: Liveness }) => {
      at.push(`${p.nodeId}:${p.liveness}@${clock.now() - start}`);
      return propose(p as never);
    };
    const start = clock.now();
    const d = new FailureDetector(coordinator, { ...options, ...opts }, scheduler);
    return { d, clock, wakes, at, start };
  }

  it("sleeps between deadlines: with every node heard on time it wakes about once per heartbeat interval, not every checkEveryMs", async () => {
    const { d, clock, wakes, at } = counted({ a: "ALIVE", b: "ALIVE", c: "ALIVE" }, { leaseTtlMs: 5000 });
    d.startLeading();
    await warmUp(d, clock, 10_000, "a", "b", "c");
    d.stopLeading();
    expect(at).toEqual([]);
    // 10 s at one look per heartbeat interval (100 ms) is 100; polling every checkEveryMs (20) was 500.
    expect(wakes.n).toBeGreaterThanOrEqual(90);
    expect(wakes.n).toBeLessThanOrEqual(110);
  });

  it("a change of the nodes wakes it within checkEveryMs; meetings written do not", async () => {
    const { d, clock, wakes } = counted({ a: "ALIVE" }, { leaseTtlMs: 5000 });
    const applied = (result: object): StateMachineNotice => ({ kind: "applied", outcome: { index: 1, result: result as never, events: [] } });
    d.startLeading();
    await clock.advance(50);
    const quiet = async () => {
      const before = wakes.n;
      await clock.advance(options.checkEveryMs);
      return wakes.n - before;
    };
    for (const notice of [
      applied({ ok: true, type: "register", nodeId: "b", generation: 1 }),
      applied({ ok: true, type: "setLiveness", nodeId: "a", liveness: "SUSPECT", changed: true }),
      applied({ ok: true, type: "deregister", moved: 0, unassigned: 0 }),
      { kind: "restored", appliedIndex: 9 } as const,
    ]) {
      d.stateChanged(notice);
      expect(await quiet()).toBe(1);
    }
    for (const notice of [
      applied({ ok: true, type: "createMeeting", created: true }),
      applied({ ok: true, type: "saveCheckpoint", sequence: 1, stored: true }),
      applied({ ok: false, code: "NOT_FOUND", message: "no such node" }),
    ]) {
      d.stateChanged(notice);
      expect(await quiet()).toBe(0);
    }
    d.stopLeading();
    d.stateChanged(applied({ ok: true, type: "register", nodeId: "c", generation: 1 })); // not leading: no timer
    expect(await quiet()).toBe(0);
  });

  it("judges a node that falls silent within checkEveryMs of each deadline, whenever its last heartbeat falls (200 schedules)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 1, max: 99 }), async (silentAfter, phase) => {
        const { d, clock, at, start } = counted({ a: "ALIVE", b: "ALIVE", c: "ALIVE" }, { leaseTtlMs: 1000 });
        d.startLeading();
        // b and c beat on time throughout; a beats at its own phase until it falls silent.
        const others = clock.setInterval(() => ["b", "c"].forEach((id) => d.heard(id, 1)), options.heartbeatIntervalMs);
        let lastA = clock.now() - start;
        d.heard("a", 1);
        await clock.advance(phase);
        const beats = clock.setInterval(() => {
          d.heard("a", 1);
          lastA = clock.now() - start;
        }, options.heartbeatIntervalMs);
        await clock.advance(silentAfter);
        clock.clearInterval(beats);
        await clock.advance(2000);
        clock.clearInterval(others);
        d.stopLeading();
        const time = (s: string) => Number(s.split("@")[1]);
        expect(at.map((s) => s.split("@")[0])).toEqual(["a:SUSPECT", "a:DEAD"]);
        // Each rule is "more than": judged after the deadline, at most checkEveryMs (and a millisecond) past it.
        const suspectAt = time(at[0]!) - lastA;
        const deadAt = time(at[1]!) - lastA;
        expect(suspectAt).toBeGreaterThan(2 * options.heartbeatIntervalMs);
        expect(suspectAt).toBeLessThanOrEqual(2 * options.heartbeatIntervalMs + options.checkEveryMs + 1);
        expect(deadAt).toBeGreaterThan(1000);
        expect(deadAt).toBeLessThanOrEqual(1000 + options.checkEveryMs + 1);
      }),
      { numRuns: 200, seed: 21 },
    );
  });
});

/** The scheduler's methods, bound, so one of them can be replaced. */
function bindScheduler(clock: VirtualScheduler) {
  return {
    now: () => clock.now(),
    monotonic: () => clock.monotonic(),
    setTimeout: (fn: () => void, ms: number) => clock.setTimeout(fn, ms),
    clearTimeout: (h: Parameters<VirtualScheduler["clearTimeout"]>[0]) => clock.clearTimeout(h),
    setInterval: (fn: () => void, ms: number) => clock.setInterval(fn, ms),
    clearInterval: (h: Parameters<VirtualScheduler["clearInterval"]>[0]) => clock.clearInterval(h),
    defer: (fn: () => void) => clock.defer(fn),
  };
}
