/**
 * A PlacementRanking chooses exactly what findPlacement would, meeting
 * after meeting, while nodes fill up, get recent placements, lose
 * meetings, and become full or held out: random clusters and requests
 * (regions, labels, limits, held-out nodes, weights) and random sequences;
 * and through the state, a node's evacuation and the unassigned queue
 * place alike whether they rank or scan.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type PlacementCandidate, type PlacementRequest, findPlacement } from "../src/coordinator/placement.js";
import { PlacementRanking } from "../src/coordinator/placement-ranking.js";
import { notePlacement } from "../src/coordinator/recent-placements.js";
import type { Labels } from "../src/coordinator/labels.js";
import type { CoordinatorState } from "../src/coordinator/state.js";
import { Harness } from "./support/state-harness.js";

interface MutableNode {
  id: string;
  liveness: "ALIVE" | "SUSPECT" | "DEAD";
  draining: boolean;
  heldOutUntilMs: number;
  capacity: number;
  assigned: number;
  recent: { bucket: number; current: number; previous: number };
  region: string;
  labels: Labels;
  limits: { cpuPermille: number; netInBytesPerSec: number; netOutBytesPerSec: number; participants: number };
  load: { cpuPermille: number; netInBytesPerSec: number; netOutBytesPerSec: number; participants: number };
}

const NOW = 10_000;
const WINDOW = 1000;

const labelArb: fc.Arbitrary<Labels> = fc.subarray([["rack", "a"] as const, ["rack", "b"] as const, ["tier", "gold"] as const], { minLength: 0 }).map((l) => l.map(([k, v]) => [k, v] as [string, string]));

const nodeArb = (i: number): fc.Arbitrary<MutableNode> =>
  fc.record({
    id: fc.constant(`s${String(i).padStart(2, "0")}`),
    liveness: fc.constantFrom("ALIVE", "ALIVE", "ALIVE", "SUSPECT", "DEAD"),
    draining: fc.integer({ min: 0, max: 6 }).map((x) => x === 0),
    heldOutUntilMs: fc.constantFrom(0, 0, 0, NOW + 5000),
    capacity: fc.integer({ min: 1, max: 6 }),
    assigned: fc.integer({ min: 0, max: 6 }),
    recent: fc.record({ bucket: fc.constantFrom(8, 9, 10), current: fc.integer({ min: 0, max: 3 }), previous: fc.integer({ min: 0, max: 3 }) }),
    region: fc.constantFrom("", "eu", "us"),
    labels: labelArb,
    limits: fc.record({ cpuPermille: fc.constantFrom(0, 0, 500), netInBytesPerSec: fc.constant(0), netOutBytesPerSec: fc.constant(0), participants: fc.constantFrom(0, 0, 20) }),
    load: fc.record({ cpuPermille: fc.integer({ min: 0, max: 900 }), netInBytesPerSec: fc.constantFrom(0, 1_000_000), netOutBytesPerSec: fc.constant(0), participants: fc.integer({ min: 0, max: 30 }) }),
  }) as fc.Arbitrary<MutableNode>;

const clusterArb = fc.integer({ min: 1, max: 25 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => nodeArb(i))));

const requestArb: fc.Arbitrary<PlacementRequest> = fc.record({
  region: fc.constantFrom("", "eu", "us", "ap"),
  requiredLabels: labelArb,
  excludedLabels: labelArb,
  nowMs: fc.constant(NOW),
  burstWindowMs: fc.constant(WINDOW),
  excludeNodeId: fc.constantFrom(undefined, "s00", "s03"),
  weights: fc.constantFrom(undefined, { meetings: 1, cpu: 0, netIn: 0, netOut: 0, participants: 0 }, { meetings: 2, cpu: 1, netIn: 0.5, netOut: 1, participants: 3 }),
}).map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as unknown as PlacementRequest);

/** A step: place one meeting, or take one meeting away from node #k (its owner left or it ended). */
const stepsArb = fc.array(fc.oneof({ weight: 4, arbitrary: fc.constant(-1) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 24 }) }), { minLength: 1, maxLength: 60 });

function clone(nodes: readonly MutableNode[]): MutableNode[] {
  return nodes.map((n) => ({ ...n, recent: { ...n.recent }, labels: n.labels, limits: { ...n.limits }, load: { ...n.load } }));
}

function run(nodes: MutableNode[], steps: number[], choose: () => string | undefined, changed: (n: MutableNode) => void): (string | undefined)[] {
  const chosen: (string | undefined)[] = [];
  for (const step of steps) {
    if (step >= 0) {
      const n = nodes[step % nodes.length]!;
      if (n.assigned === 0) continue;
      n.assigned--;
      changed(n);
      continue;
    }
    const id = choose();
    chosen.push(id);
    if (id === undefined) continue;
    const n = nodes.find((x) => x.id === id)!;
    n.assigned++;
    notePlacement(n.recent, NOW, WINDOW);
    changed(n);
  }
  return chosen;
}

describe("PlacementRanking", () => {
  it("chooses what findPlacement chooses, placement after placement", () => {
    fc.assert(
      fc.property(clusterArb, requestArb, stepsArb, (cluster, req, steps) => {
        const scanned = clone(cluster);
        const expected = run(scanned, steps, () => findPlacement(scanned as PlacementCandidate[], req), () => undefined);
        const ranked = clone(cluster);
        const ranking = new PlacementRanking(ranked as PlacementCandidate[], req);
        const actual = run(ranked, steps, () => ranking.best(), (n) => ranking.update(n));
        expect(actual).toEqual(expected);
      }),
      { numRuns: 2000 },
    );
  });

  it("refuses a request with a preferred node (findPlacement's rule 2 is not ranked)", () => {
    expect(() => new PlacementRanking([], { region: "", requiredLabels: [], nowMs: 0, burstWindowMs: 1000, preferredNodeId: "s1" })).toThrow(/preferred/);
  });
});

describe("placing meetings in a row through the state", () => {
  /** 60 small nodes in three regions and two racks, and "big", which holds 150 meetings of mixed regions and labels. */
  function build(): Harness {
    const h = new Harness();
    h.raiseClusterVersion();
    for (let i = 0; i < 60; i++) h.register(`s${String(i).padStart(2, "0")}`, { capacity: 1 + (i % 3), region: ["", "eu", "us"][i % 3]!, labels: { rack: i % 2 === 0 ? "a" : "b" } });
    h.register("big", { capacity: 400 });
    for (let k = 0; k < 150; k++) {
      h.create(`m${String(k).padStart(3, "0")}`, { region: ["", "eu", "us", "ap"][Math.floor(k / 40) % 4]!, ...(k % 5 === 0 ? { labels: { rack: "a" } } : {}), preferredNodeId: "big" });
    }
    return h;
  }
  const stateOf = (h: Harness) => (h.sm as unknown as { state: CoordinatorState }).state;
  const owners = (h: Harness) => h.q.listMeetings().map((r) => `${r.meetingId}→${r.nodeId}@${r.epoch}`);

  it("evacuates a node's meetings where one scan per meeting would put them (some fit nowhere)", () => {
    const ranked = build();
    const scanned = build();
    expect(stateOf(ranked).ownedSorted("big").length).toBeGreaterThan(100); // those that need rack a are elsewhere
    stateOf(ranked).evacuate("big", "unassign", []);
    // What evacuate did before rankings: a scan of every node for each meeting.
    const s = stateOf(scanned);
    for (const id of s.ownedSorted("big")) {
      const meeting = s.meetingOrThrow(id);
      const target = s.findNodeFor(meeting, "big");
      s.revoke(meeting, []);
      if (target !== undefined) s.assign(meeting, target, []);
    }
    expect(owners(ranked)).toEqual(owners(scanned));
    expect(stateOf(ranked).unassignedCount).toBe(stateOf(scanned).unassignedCount);
    expect(stateOf(ranked).unassignedCount).toBeGreaterThan(0); // the small nodes filled up on the way
  });

  it("places the unassigned queue where one scan per meeting would", () => {
    const ranked = build();
    const scanned = build();
    for (const h of [ranked, scanned]) {
      stateOf(h).evacuate("big", "unassign", []);
      h.register("more-1", { capacity: 7, region: "ap" });
      h.register("more-2", { capacity: 9, labels: { rack: "a" } });
    }
    stateOf(ranked).placeUnassigned([]);
    const s = stateOf(scanned);
    for (const id of [...(s as unknown as { unassigned: Set<string> }).unassigned].sort()) {
      const meeting = s.meetingOrThrow(id);
      const target = s.findNodeFor(meeting);
      if (target !== undefined) s.assign(meeting, target, []);
    }
    expect(owners(ranked)).toEqual(owners(scanned));
  });
});
