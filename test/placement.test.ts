/** Placement as a pure function: each rule, a property against a naive version, and storms. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ResourceExhaustedError } from "../src/coordinator/errors.js";
import { type Labels, labelsMatch, validateLabels } from "../src/coordinator/labels.js";
import type { Liveness } from "../src/coordinator/model.js";
import {
  type PlacementCandidate,
  type PlacementRequest,
  choosePlacement,
  compareRelativeLoad,
  findPlacement,
} from "../src/coordinator/placement.js";
import { countRecent, noRecentPlacements, notePlacement } from "../src/coordinator/recent-placements.js";

const WINDOW = 1_000;

interface MutableCandidate {
  id: string;
  liveness: Liveness;
  draining: boolean;
  heldOutUntilMs: number;
  capacity: number;
  assigned: number;
  recent: ReturnType<typeof noRecentPlacements>;
  region: string;
  labels: Labels;
}

function node(id: string, fields: Partial<MutableCandidate> = {}): MutableCandidate {
  return {
    id,
    liveness: "ALIVE",
    draining: false,
    heldOutUntilMs: 0,
    capacity: 10,
    assigned: 0,
    recent: noRecentPlacements(),
    region: "",
    labels: [],
    ...fields,
  };
}

function request(fields: Partial<PlacementRequest> = {}): PlacementRequest {
  return { region: "", requiredLabels: [], nowMs: 0, burstWindowMs: WINDOW, ...fields };
}

/** Places one meeting the way the state does: count it as assigned and recent. */
function placeOne(nodes: MutableCandidate[], nowMs: number, fields: Partial<PlacementRequest> = {}): string {
  const id = choosePlacement(nodes, request({ nowMs, ...fields }));
  const chosen = nodes.find((n) => n.id === id)!;
  chosen.assigned++;
  notePlacement(chosen.recent, nowMs, WINDOW);
  return id;
}

describe("placement rules", () => {
  it("chooses the least loaded relative to capacity, not the fewest meetings", () => {
    const nodes = [node("a", { capacity: 10, assigned: 5 }), node("b", { capacity: 20, assigned: 8 })];
    expect(findPlacement(nodes, request())).toBe("b");
  });

  it("breaks ties by the smaller node id, whatever the order given", () => {
    const nodes = [node("c", { assigned: 2 }), node("b", { capacity: 20, assigned: 4 }), node("a", { assigned: 2 })];
    expect(findPlacement(nodes, request())).toBe("a");
    expect(findPlacement([...nodes].reverse(), request())).toBe("a");
  });

  it.each([
    ["SUSPECT", { liveness: "SUSPECT" as const }],
    ["DEAD", { liveness: "DEAD" as const }],
    ["draining", { draining: true }],
    ["full", { assigned: 10 }],
    ["over capacity", { assigned: 12 }],
  ])("passes over a node that is %s", (_why, fields) => {
    const nodes = [node("a", fields), node("b", { assigned: 9 })];
    expect(findPlacement(nodes, request({ nowMs: 100 }))).toBe("b");
    expect(findPlacement([node("a", fields)], request({ nowMs: 100 }))).toBeUndefined();
  });

  it("uses a node held out by flap damping only when no other node is eligible", () => {
    const held = node("a", { heldOutUntilMs: 500 });
    expect(findPlacement([held, node("b", { assigned: 9 })], request({ nowMs: 100 }))).toBe("b");
    expect(findPlacement([held, node("b", { assigned: 10 })], request({ nowMs: 100 }))).toBe("a");
    expect(findPlacement([held], request({ nowMs: 100 }))).toBe("a");
    // The requested region is only preferred among nodes that are not held out.
    const regional = node("r", { heldOutUntilMs: 500, region: "eu" });
    expect(findPlacement([regional, node("b", { assigned: 9 })], request({ nowMs: 100, region: "eu" }))).toBe("b");
  });

  it("takes a held-out node back once its hold-out ends", () => {
    const nodes = [node("a", { heldOutUntilMs: 500 }), node("b", { assigned: 9 })];
    expect(findPlacement(nodes, request({ nowMs: 499 }))).toBe("b");
    expect(findPlacement(nodes, request({ nowMs: 500 }))).toBe("a");
  });

  it("passes over the excluded node", () => {
    expect(findPlacement([node("a"), node("b", { assigned: 5 })], request({ excludeNodeId: "a" }))).toBe("b");
  });

  it("requires every key/value of the selector", () => {
    const nodes = [
      node("a", { labels: validateLabels({ gpu: "a100" }) }),
      node("b", { assigned: 5, labels: validateLabels({ gpu: "a100", zone: "1" }) }),
    ];
    expect(findPlacement(nodes, request({ requiredLabels: validateLabels({ gpu: "a100" }) }))).toBe("a");
    expect(findPlacement(nodes, request({ requiredLabels: validateLabels({ zone: "1", gpu: "a100" }) }))).toBe("b");
    expect(findPlacement(nodes, request({ requiredLabels: validateLabels({ zone: "2" }) }))).toBeUndefined();
  });

  it("prefers the requested region when a node there has room, else goes anywhere", () => {
    const nodes = [node("a", { region: "us" }), node("b", { region: "eu", assigned: 8 }), node("c", { region: "eu", assigned: 9 })];
    expect(findPlacement(nodes, request({ region: "eu" }))).toBe("b");
    nodes[1]!.assigned = 10;
    nodes[2]!.assigned = 10;
    expect(findPlacement(nodes, request({ region: "eu" }))).toBe("a");
    expect(findPlacement(nodes, request({ region: "ap" }))).toBe("a");
    expect(findPlacement(nodes, request({ region: "" }))).toBe("a");
  });

  it("does not let an ineligible node in the region win over an eligible one elsewhere", () => {
    const nodes = [node("a", { region: "us", assigned: 9 }), node("b", { region: "eu", draining: true })];
    expect(findPlacement(nodes, request({ region: "eu" }))).toBe("a");
  });

  it("throws ResourceExhaustedError saying why each node was passed over", () => {
    const nodes = [node("a", { assigned: 10 }), node("b", { liveness: "DEAD" }), node("c", { draining: true }), node("d", { labels: [] })];
    const req = request({ requiredLabels: validateLabels({ gpu: "a100" }) });
    expect(() => choosePlacement(nodes, req)).toThrow(ResourceExhaustedError);
    expect(() => choosePlacement(nodes, req)).toThrow(/no live node has room \(4 nodes: 1 full, 1 dead, 1 draining, 1 without labels gpu=a100\)/);
    expect(() => choosePlacement([], req)).toThrow(/no node is registered/);
    try {
      choosePlacement([], req);
    } catch (err) {
      expect((err as ResourceExhaustedError).code).toBe("RESOURCE_EXHAUSTED");
    }
  });

  it("compares loads exactly, even past 2^53", () => {
    const max = 0xffff_ffff;
    expect(compareRelativeLoad(max - 1, max, max - 2, max - 1)).toBe(1); // (m-1)/m > (m-2)/(m-1)
    expect(compareRelativeLoad(max - 2, max - 1, max - 1, max)).toBe(-1);
    expect(compareRelativeLoad(3, 9, 1, 3)).toBe(0);
  });
});

describe("burst compensation", () => {
  it("counts a placement as recent for one to two windows", () => {
    const recent = noRecentPlacements();
    notePlacement(recent, 1_500, WINDOW); // window 1
    notePlacement(recent, 1_900, WINDOW);
    expect(countRecent(recent, 1_999, WINDOW)).toBe(2);
    expect(countRecent(recent, 2_999, WINDOW)).toBe(2); // window 2: the previous window still counts
    expect(countRecent(recent, 3_000, WINDOW)).toBe(0);
    notePlacement(recent, 2_100, WINDOW); // window 2: window 1 becomes "previous"
    expect(countRecent(recent, 2_100, WINDOW)).toBe(3);
    expect(countRecent(recent, 3_100, WINDOW)).toBe(1);
    notePlacement(recent, 5_000, WINDOW); // two windows later: the old counts are gone
    expect(recent).toEqual({ bucket: 5, current: 1, previous: 0 });
  });

  it("weighs recent placements so an equally loaded node without them wins", () => {
    const nodes = [node("a", { assigned: 4 }), node("b", { assigned: 5 })];
    for (let i = 0; i < 2; i++) notePlacement(nodes[0]!.recent, 100, WINDOW);
    expect(findPlacement(nodes, request({ nowMs: 100 }))).toBe("b"); // a: (4+2)/10 > b: 5/10
    expect(findPlacement(nodes, request({ nowMs: 2_000 }))).toBe("a"); // the burst has aged out
  });

  it("spreads a storm of 1,000 creates over 3 equal nodes within ±1", () => {
    const nodes = [node("n1", { capacity: 1_000 }), node("n2", { capacity: 1_000 }), node("n3", { capacity: 1_000 })];
    for (let i = 0; i < 1_000; i++) placeOne(nodes, i); // 1 ms apart: a storm inside a few windows
    const counts = nodes.map((n) => n.assigned);
    expect(counts.reduce((a, b) => a + b)).toBe(1_000);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
  });

  it("does not pour a whole storm onto a node that just joined empty", () => {
    const nodes = [node("a", { capacity: 100, assigned: 40 }), node("b", { capacity: 100, assigned: 40 }), node("c", { capacity: 100 })];
    const landed = { a: 0, b: 0, c: 0 } as Record<string, number>;
    for (let i = 0; i < 60; i++) landed[placeOne(nodes, 10)]!++;
    // Without compensation the first 40 would all go to c; with it, each placement weighs double for a while.
    expect(landed["c"]).toBeLessThan(40);
    expect(landed["a"]! + landed["b"]!).toBeGreaterThan(20);
  });
});

// ---- property: the one-pass placement equals a naive sort over many random clusters ----

const LABEL_POOL: [string, string][] = [
  ["gpu", "a100"],
  ["gpu", "t4"],
  ["zone", "1"],
  ["zone", "2"],
  ["tier", "gold"],
];

const labelsArb = fc.subarray(LABEL_POOL).map((pairs) => {
  const seen = new Set<string>();
  return validateLabels(pairs.filter(([k]) => (seen.has(k) ? false : (seen.add(k), true))));
});

interface GeneratedNode {
  id: string;
  liveness: Liveness;
  draining: boolean;
  heldOutUntilMs: number;
  capacity: number;
  assigned: number;
  placementTimes: number[];
  region: string;
  labels: Labels;
}

const nodeArb = (id: string): fc.Arbitrary<GeneratedNode> =>
  fc.record({
    id: fc.constant(id),
    liveness: fc.constantFrom<Liveness>("ALIVE", "ALIVE", "ALIVE", "SUSPECT", "DEAD"),
    draining: fc.constantFrom(false, false, false, true),
    heldOutUntilMs: fc.oneof(fc.constant(0), fc.nat(400)),
    capacity: fc.oneof(fc.integer({ min: 1, max: 12 }), fc.constant(0xffff_ffff)),
    assigned: fc.nat(14),
    placementTimes: fc.array(fc.nat(300), { maxLength: 8 }).map((ts) => ts.sort((a, b) => a - b)),
    region: fc.constantFrom("", "eu", "us"),
    labels: labelsArb,
  });

const clusterArb = fc
  .uniqueArray(fc.constantFrom("n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9", "N1", "m.1", "m-2"), { maxLength: 8 })
  .chain((ids) => fc.tuple(...ids.map(nodeArb)));

const requestArb = fc.record({
  region: fc.constantFrom("", "eu", "us", "ap"),
  requiredLabels: labelsArb,
  nowMs: fc.integer({ min: 300, max: 700 }),
  burstWindowMs: fc.integer({ min: 1, max: 200 }),
  exclude: fc.option(fc.constantFrom("n0", "n1", "n2"), { nil: undefined }),
});

function naivePlacement(nodes: GeneratedNode[], req: { region: string; requiredLabels: Labels; nowMs: number; burstWindowMs: number; exclude: string | undefined }): string | undefined {
  const window = Math.floor(req.nowMs / req.burstWindowMs);
  const recentOf = (n: GeneratedNode) => n.placementTimes.filter((t) => Math.floor(t / req.burstWindowMs) >= window - 1).length;
  const usable = nodes.filter(
    (n) =>
      n.id !== req.exclude &&
      n.liveness === "ALIVE" &&
      !n.draining &&
      n.assigned < n.capacity &&
      req.requiredLabels.every(([k, v]) => n.labels.some(([k2, v2]) => k2 === k && v2 === v)),
  );
  const notHeldOut = usable.filter((n) => req.nowMs >= n.heldOutUntilMs);
  const eligible = notHeldOut.length > 0 ? notHeldOut : usable;
  const inRegion = eligible.filter((n) => req.region !== "" && n.region === req.region);
  const pool = inRegion.length > 0 ? inRegion : eligible;
  const sorted = [...pool].sort((a, b) => {
    const diff = BigInt(a.assigned + recentOf(a)) * BigInt(b.capacity) - BigInt(b.assigned + recentOf(b)) * BigInt(a.capacity);
    if (diff !== 0n) return diff < 0n ? -1 : 1;
    return a.id < b.id ? -1 : 1;
  });
  return sorted[0]?.id;
}

function asCandidate(n: GeneratedNode, windowMs: number): PlacementCandidate {
  const recent = noRecentPlacements();
  for (const t of n.placementTimes) notePlacement(recent, t, windowMs);
  return { ...n, recent };
}

describe("placement against a naive version", () => {
  it("chooses what sorting every eligible node would (20,000 random clusters)", () => {
    fc.assert(
      fc.property(clusterArb, requestArb, (nodes, req) => {
        const candidates = nodes.map((n) => asCandidate(n, req.burstWindowMs));
        const fast = findPlacement(candidates, {
          region: req.region,
          requiredLabels: req.requiredLabels,
          nowMs: req.nowMs,
          burstWindowMs: req.burstWindowMs,
          ...(req.exclude === undefined ? {} : { excludeNodeId: req.exclude }),
        });
        expect(fast).toBe(naivePlacement(nodes, req));
      }),
      { numRuns: 20_000 },
    );
  });

  it("labelsMatch equals a naive subset check", () => {
    fc.assert(
      fc.property(labelsArb, labelsArb, (labels, selector) => {
        const naive = selector.every(([k, v]) => labels.some(([k2, v2]) => k2 === k && v2 === v));
        expect(labelsMatch(labels, selector)).toBe(naive);
      }),
      { numRuns: 5_000 },
    );
  });
});
