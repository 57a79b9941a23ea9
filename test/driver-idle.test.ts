/**
 * An idle group's members sleep between the ticks that can act: the real
 * RaftDriver, three members on virtual time, with the product's timing
 * (20 ms ticks, heartbeats every 2, elections after 20 to 40). Each wake of
 * an idle process costs CPU whatever it does (about 160 µs here), so a
 * follower must not wake every tick to count it: it wakes for its leader's
 * heartbeats and, at most, once per election timeout.
 */
import { describe, expect, it } from "vitest";
import { KvStateMachine, encodeKvCommand } from "../src/member/kv-state-machine.js";
import { SeededRandom, StateRole, defaultConfig } from "../src/raft/index.js";
import { RaftDriver } from "../src/raft-runtime/driver.js";
import { MemoryDurableStorage } from "../src/raft-runtime/memory-durable-storage.js";
import { MemoryHub, MemoryTransport } from "../src/raft-runtime/memory-transport.js";
import type { Scheduler, TimerHandle } from "../src/time/scheduler.js";
import { VirtualScheduler } from "../src/time/virtual-scheduler.js";

const IDS = ["n1", "n2", "n3"];
const TICK_MS = 20;
const ELECTION_TICKS = 20;
const HEARTBEAT_TICKS = 2;

/** The world's clock, counting the timer callbacks (not deferred work) one member's driver gets. */
class CountingScheduler implements Scheduler {
  fired = 0;
  constructor(private readonly world: VirtualScheduler) {}
  now(): number {
    return this.world.now();
  }
  monotonic(): number {
    return this.world.monotonic();
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.world.setTimeout(() => {
      this.fired++;
      fn();
    }, ms);
  }
  setInterval(fn: () => void, ms: number): TimerHandle {
    return this.world.setInterval(() => {
      this.fired++;
      fn();
    }, ms);
  }
  clearTimeout(handle: TimerHandle | undefined): void {
    this.world.clearTimeout(handle);
  }
  clearInterval(handle: TimerHandle | undefined): void {
    this.world.clearInterval(handle);
  }
  defer(fn: () => void): void {
    this.world.defer(fn);
  }
}

/**
 * Moves virtual time a tick at a time: the memory transport delivers on
 * the real event loop's turns, and the world yields one turn per timer, so
 * a jump over a stretch with no timer (every member asleep) would deliver
 * the messages sent in it only at its end.
 */
async function run(world: VirtualScheduler, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += TICK_MS) await world.advance(Math.min(TICK_MS, ms - t));
}

async function idleGroup(seed: number) {
  const world = new VirtualScheduler(0);
  const hub = new MemoryHub();
  const members = await Promise.all(
    IDS.map(async (id, i) => {
      const clock = new CountingScheduler(world);
      const driver = await RaftDriver.start({
        config: { ...defaultConfig(id, new SeededRandom(seed * 10 + i)), electionTick: ELECTION_TICKS, heartbeatTick: HEARTBEAT_TICKS },
        tickMs: TICK_MS,
        storage: MemoryDurableStorage.bootstrap(IDS),
        transport: new MemoryTransport({ selfId: id, hub, peers: IDS.filter((p) => p !== id) }),
        stateMachine: new KvStateMachine(),
        peers: new Map(IDS.map((p) => [p, `${p}.test:7000`])),
        snapshotEvery: 1_000_000,
        requestTimeoutMs: 5_000,
        scheduler: clock,
      });
      return { id, clock, driver };
    }),
  );
  return { world, members };
}

describe("an idle member sleeps between the ticks that act (the real driver on virtual time)", () => {
  it("over 10 s: the leader wakes once per heartbeat, a follower about once per election timeout, and the group still commits at once", async () => {
    for (const seed of [1, 2, 3]) {
      const { world, members } = await idleGroup(seed);
      try {
        await run(world, 3_000);
        const leaders = members.filter((m) => m.driver.isLeader());
        expect(leaders, `seed ${seed}`).toHaveLength(1);
        for (const m of members) m.clock.fired = 0;
        const terms = members.map((m) => m.driver.term);
        const seconds = 10;
        await run(world, seconds * 1000);
        // The same leader throughout: sleeping lost no heartbeat.
        expect(members.map((m) => m.driver.term)).toEqual(terms);
        expect(leaders[0]!.driver.isLeader()).toBe(true);
        const ticks = (seconds * 1000) / TICK_MS;
        const heartbeats = ticks / HEARTBEAT_TICKS;
        for (const m of members) {
          if (m === leaders[0]) {
            expect(m.clock.fired, `seed ${seed}: the leader's wakes`).toBeLessThanOrEqual(heartbeats + 5);
          } else {
            // Every heartbeat pushes the election deadline back: the timer set at the earliest fires about once per election timeout.
            expect(m.clock.fired, `seed ${seed}: ${m.id}'s wakes`).toBeLessThanOrEqual(Math.ceil(ticks / ELECTION_TICKS) + 5);
          }
        }
        const leader = leaders[0]!.driver;
        const follower = members.find((m) => m !== leaders[0])!;
        const written = leader.propose(encodeKvCommand({ op: "put", key: "k", value: "v" }));
        await run(world, TICK_MS);
        await expect(written).resolves.toBeDefined();
        expect(follower.driver.status().role).toBe(StateRole.Follower);
      } finally {
        await Promise.all(members.map((m) => m.driver.stop()));
      }
    }
  });

  it("a follower whose leader went silent campaigns within its election timeout", async () => {
    const { world, members } = await idleGroup(4);
    try {
      await run(world, 3_000);
      const leader = members.find((m) => m.driver.isLeader())!;
      const term = leader.driver.term;
      await leader.driver.stop();
      // At most two election timeouts (a randomized timeout, then the vote).
      await run(world, 2 * ELECTION_TICKS * TICK_MS + 4 * TICK_MS);
      const next = members.filter((m) => m !== leader && m.driver.isLeader());
      expect(next).toHaveLength(1);
      expect(next[0]!.driver.term).toBeGreaterThan(term);
    } finally {
      await Promise.all(members.map((m) => m.driver.stop()));
    }
  });
});
