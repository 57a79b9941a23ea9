/**
 * The leader's failure detector on its own, with a stub coordinator:
 * silence past the lease is death, but silence while this process itself
 * was paused is not.
 */
import { describe, expect, it } from "vitest";
import type { CoordinatorReplica } from "../src/coordinator/service/coordinator-replica.js";
import { FailureDetector } from "../src/coordinator/service/failure-detector.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function stub(liveness: Record<string, "ALIVE" | "SUSPECT" | "DEAD">) {
  const proposals: string[] = [];
  const node = (nodeId: string) => ({ nodeId, generation: 1, liveness: liveness[nodeId]!, draining: false });
  const coordinator = {
    local: () => ({ listNodes: () => Object.keys(liveness).map(node), getNode: (id: string) => (id in liveness ? node(id) : undefined) }),
    propose: async (p: { nodeId: string; liveness: "ALIVE" | "SUSPECT" | "DEAD" }) => {
      proposals.push(`${p.nodeId}:${p.liveness}`);
      liveness[p.nodeId] = p.liveness;
      return {};
    },
  } as unknown as CoordinatorReplica;
  return { coordinator, proposals };
}

const options = { leaseTtlMs: 400, heartbeatIntervalMs: 100, disconnectGraceMs: 100, checkEveryMs: 20 };

describe("FailureDetector", () => {
  it("declares a silent node suspect, then dead when its lease runs out", async () => {
    const { coordinator, proposals } = stub({ a: "ALIVE" });
    const d = new FailureDetector(coordinator, options);
    d.startLeading();
    d.heard("a", 1);
    await sleep(600);
    d.stopLeading();
    expect(proposals).toEqual(["a:SUSPECT", "a:DEAD"]);
  });

  it("a broken connection makes a node suspect at once and dead after the grace", async () => {
    const { coordinator, proposals } = stub({ a: "ALIVE" });
    const d = new FailureDetector(coordinator, { ...options, leaseTtlMs: 5000 });
    d.startLeading();
    await sleep(30);
    d.heard("a", 1);
    d.disconnected("a", 1);
    expect(proposals).toEqual(["a:SUSPECT"]);
    await sleep(250);
    d.stopLeading();
    expect(proposals).toEqual(["a:SUSPECT", "a:DEAD"]);
  });

  it("a broken stream of an older generation leaves the current one alone", async () => {
    // The node is at generation 1 in the stub; a report about generation 0
    // (its previous incarnation) arrives late, e.g. after a leader pause.
    const { coordinator, proposals } = stub({ a: "ALIVE" });
    const d = new FailureDetector(coordinator, options);
    d.startLeading();
    const beats = setInterval(() => d.heard("a", 1), 100);
    // Past a lease since this member began to lead, with steady heartbeats.
    await sleep(550);
    d.disconnected("a", 0);
    await sleep(300);
    clearInterval(beats);
    d.stopLeading();
    expect(proposals).toEqual([]);
  });

  it("judges nobody after its own process was paused past the lease", async () => {
    const { coordinator, proposals } = stub({ a: "ALIVE", b: "ALIVE" });
    const d = new FailureDetector(coordinator, options);
    d.startLeading();
    d.heard("a", 1);
    d.heard("b", 1);
    await sleep(30);
    // A pause of the whole process (a large snapshot, a GC) longer than the lease.
    const until = Date.now() + 600;
    while (Date.now() < until) {
      // busy
    }
    // Heartbeats queued during the pause arrive right after it.
    await sleep(30);
    d.heard("a", 1);
    d.heard("b", 1);
    await sleep(150);
    d.stopLeading();
    expect(proposals).toEqual([]);
  });

  it("judges nobody by lease when most nodes go silent at once (its own overload or isolation), but still a broken connection", async () => {
    const { coordinator, proposals } = stub({ a: "ALIVE", b: "ALIVE", c: "ALIVE", d: "ALIVE", e: "ALIVE" });
    const episodes: [number, number][] = [];
    const d = new FailureDetector(coordinator, { ...options, onMassSilence: (overdue, live) => episodes.push([overdue, live]) });
    d.startLeading();
    const beats = setInterval(() => d.heard("a", 1), 50); // only a is heard
    await sleep(30);
    d.heard("e", 1);
    d.disconnected("e", 1); // e's process died: its connection broke
    await sleep(600);
    expect(proposals).toEqual(["e:SUSPECT", "e:DEAD"]);
    expect(episodes).toEqual([[3, 4]]); // e was already dead: 3 of the 4 live nodes silent
    // The others are heard again: the episode ends, nobody was declared.
    for (const id of ["b", "c", "d"]) d.heard(id, 1);
    await sleep(60);
    clearInterval(beats);
    d.stopLeading();
    expect(proposals).toEqual(["e:SUSPECT", "e:DEAD"]);
    expect(episodes).toEqual([[3, 4], [0, 4]]);
  });

  it("still declares a minority of silent nodes dead", async () => {
    const { coordinator, proposals } = stub({ a: "ALIVE", b: "ALIVE", c: "ALIVE", d: "ALIVE" });
    const d = new FailureDetector(coordinator, options);
    d.startLeading();
    const beats = setInterval(() => ["a", "b", "c"].forEach((id) => d.heard(id, 1)), 50);
    await sleep(600);
    clearInterval(beats);
    d.stopLeading();
    expect(proposals).toEqual(["d:SUSPECT", "d:DEAD"]);
  });
});
