/**
 * Placement by real load (issue 19): reported CPU, network and participants
 * scored with weights, declared hard limits, excluded labels, a preferred
 * node; each rule, then the one-pass placement against a naive scorer over
 * random clusters, as test/placement.test.ts does for the rules before.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Labels, labelsShareAny, validateLabels } from "../src/coordinator/labels.js";
import type { Liveness } from "../src/coordinator/model.js";
import { DEFAULT_WEIGHTS, type LoadFigures, type NodeLimits, type PlacementWeights, utilization } from "../src/coordinator/node-load.js";
import { type PlacementCandidate, type PlacementRequest, explainNoPlacement, findPlacement } from "../src/coordinator/placement.js";
import { noRecentPlacements, notePlacement } from "../src/coordinator/recent-placements.js";

const NONE: LoadFigures = { cpuPermille: 0, netInBytesPerSec: 0, netOutBytesPerSec: 0, participants: 0 };

function node(id: string, fields: Partial<PlacementCandidate> = {}): PlacementCandidate {
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
    limits: NONE,
    load: NONE,
    ...fields,
  };
}

function request(fields: Partial<PlacementRequest> = {}): PlacementRequest {
  return { region: "", requiredLabels: [], nowMs: 0, burstWindowMs: 1_000, ...fields };
}

describe("placement by load", () => {
  it("scores every reported dimension: the node with less CPU, traffic or participants wins at equal meeting counts", () => {
    expect(findPlacement([node("a", { load: { ...NONE, cpuPermille: 700 } }), node("b", { load: { ...NONE, cpuPermille: 200 } })], request())).toBe("b");
    expect(findPlacement([node("a", { load: { ...NONE, netOutBytesPerSec: 90e6 } }), node("b")], request())).toBe("b");
    expect(findPlacement([node("a", { load: { ...NONE, netInBytesPerSec: 1e6 } }), node("b", { load: { ...NONE, netInBytesPerSec: 2e6 } })], request())).toBe("a");
    expect(findPlacement([node("a", { load: { ...NONE, participants: 300 } }), node("b", { load: { ...NONE, participants: 10 } })], request())).toBe("b");
    // Relative to a declared limit: 50 of 100 participants is fuller than 200 of 1,000.
    const limited = node("a", { limits: { ...NONE, participants: 100 }, load: { ...NONE, participants: 50 } });
    expect(findPlacement([limited, node("b", { load: { ...NONE, participants: 200 } })], request())).toBe("b");
  });

  it("weights decide how much each dimension counts; a weight of 0 ignores it", () => {
    const nodes = [node("a", { assigned: 6, load: { ...NONE, cpuPermille: 100 } }), node("b", { assigned: 2, load: { ...NONE, cpuPermille: 900 } })];
    expect(findPlacement(nodes, request())).toBe("a"); // 0.6 + 0.1 < 0.2 + 0.9
    const meetingsOnly: PlacementWeights = { ...DEFAULT_WEIGHTS, cpu: 0 };
    expect(findPlacement(nodes, request({ weights: meetingsOnly }))).toBe("b");
    expect(findPlacement(nodes, request({ weights: { ...DEFAULT_WEIGHTS, meetings: 0 } }))).toBe("a");
  });

  it("never places on a node at or over a limit it declared, and says so when none is left", () => {
    const hot = node("a", { limits: { ...NONE, cpuPermille: 800 }, load: { ...NONE, cpuPermille: 800 } });
    expect(findPlacement([hot, node("b", { assigned: 9 })], request())).toBe("b");
    expect(findPlacement([hot], request())).toBeUndefined();
    const net = node("n", { limits: { ...NONE, netOutBytesPerSec: 1000 }, load: { ...NONE, netOutBytesPerSec: 1001 } });
    expect(findPlacement([net], request())).toBeUndefined();
    // An undeclared dimension is never a hard limit, however high.
    expect(findPlacement([node("x", { load: { ...NONE, cpuPermille: 1000, participants: 1e6 } })], request())).toBe("x");
    expect(explainNoPlacement([hot, net], request())).toBe("no live node has room (2 nodes: 2 at a declared load limit)");
  });

  it("spreads within the requested region: the least loaded node there, not the first with room", () => {
    const nodes = [
      node("eu-1", { region: "eu", assigned: 3, load: { ...NONE, cpuPermille: 500 } }),
      node("eu-2", { region: "eu", assigned: 3, load: { ...NONE, cpuPermille: 100 } }),
      node("us-1", { region: "us" }),
    ];
    expect(findPlacement(nodes, request({ region: "eu" }))).toBe("eu-2");
  });

  it("keeps a meeting off nodes with an excluded label, and takes a preferred node when it is eligible", () => {
    const nodes = [node("a", { labels: validateLabels({ tier: "trial" }) }), node("b", { assigned: 9 })];
    expect(findPlacement(nodes, request({ excludedLabels: validateLabels({ tier: "trial" }) }))).toBe("b");
    expect(findPlacement(nodes, request({ excludedLabels: validateLabels({ tier: "gold" }) }))).toBe("a");
    expect(explainNoPlacement([nodes[0]!], request({ excludedLabels: validateLabels({ tier: "trial" }) }))).toContain("1 with excluded labels tier=trial");
    expect(findPlacement(nodes, request({ preferredNodeId: "b" }))).toBe("b");
    expect(findPlacement([node("a"), node("b", { assigned: 10 })], request({ preferredNodeId: "b" }))).toBe("a");
    expect(findPlacement([node("a"), node("b", { draining: true })], request({ preferredNodeId: "b" }))).toBe("a");
  });

  it("utilization is the fullest dimension: meetings, CPU, and what has a declared limit", () => {
    expect(utilization({ capacity: 10, limits: NONE, load: NONE }, 5)).toBe(0.5);
    expect(utilization({ capacity: 10, limits: NONE, load: { ...NONE, cpuPermille: 900 } }, 5)).toBe(0.9);
    expect(utilization({ capacity: 10, limits: { ...NONE, cpuPermille: 500 }, load: { ...NONE, cpuPermille: 400 } }, 1)).toBe(0.8);
    expect(utilization({ capacity: 10, limits: NONE, load: { ...NONE, participants: 5000 } }, 1)).toBe(0.1);
    expect(utilization({ capacity: 10, limits: { ...NONE, participants: 100 }, load: { ...NONE, participants: 95 } }, 1)).toBe(0.95);
  });
});

// ---- property: the one-pass placement equals a naive scorer ----

const LABEL_POOL: [string, string][] = [
  ["gpu", "a100"],
  ["zone", "1"],
  ["zone", "2"],
  ["tier", "gold"],
  ["tier", "trial"],
];

const labelsArb = fc.subarray(LABEL_POOL).map((pairs) => {
  const seen = new Set<string>();
  return validateLabels(pairs.filter(([k]) => (seen.has(k) ? false : (seen.add(k), true))));
});

const figuresArb = (max: { cpu: number; net: number; participants: number }): fc.Arbitrary<LoadFigures> =>
  fc.record({
    cpuPermille: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: max.cpu })),
    netInBytesPerSec: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: max.net })),
    netOutBytesPerSec: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: max.net })),
    participants: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: max.participants })),
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
  limits: NodeLimits;
  load: LoadFigures;
}

const nodeArb = (id: string): fc.Arbitrary<GeneratedNode> =>
  fc.record({
    id: fc.constant(id),
    liveness: fc.constantFrom<Liveness>("ALIVE", "ALIVE", "ALIVE", "SUSPECT"),
    draining: fc.constantFrom(false, false, false, true),
    heldOutUntilMs: fc.oneof(fc.constant(0), fc.nat(400)),
    capacity: fc.oneof(fc.integer({ min: 1, max: 12 }), fc.constant(0xffff_ffff)),
    assigned: fc.nat(14),
    placementTimes: fc.array(fc.nat(300), { maxLength: 6 }).map((ts) => ts.sort((a, b) => a - b)),
    region: fc.constantFrom("", "eu", "us"),
    labels: labelsArb,
    limits: figuresArb({ cpu: 1000, net: 5_000, participants: 60 }),
    // Small figures too, so that equal scores (and the tie-breaks) happen.
    load: fc.oneof(fc.constant(NONE), figuresArb({ cpu: 1000, net: 6_000, participants: 80 })),
  });

const clusterArb = fc.uniqueArray(fc.constantFrom("n0", "n1", "n2", "n3", "n4", "n5", "n6", "N1", "m.1"), { maxLength: 7 }).chain((ids) => fc.tuple(...ids.map(nodeArb)));

const weightArb = fc.oneof(fc.constant(0), fc.constant(1), fc.integer({ min: 0, max: 1000 }), fc.double({ min: 0, max: 10, noNaN: true }));

const requestArb = fc.record({
  region: fc.constantFrom("", "eu", "us", "ap"),
  requiredLabels: labelsArb,
  excludedLabels: labelsArb,
  preferred: fc.option(fc.constantFrom("n0", "n1", "n2", "ghost"), { nil: undefined }),
  nowMs: fc.integer({ min: 300, max: 700 }),
  burstWindowMs: fc.integer({ min: 1, max: 200 }),
  exclude: fc.option(fc.constantFrom("n0", "n1"), { nil: undefined }),
  weights: fc.oneof(fc.constant(DEFAULT_WEIGHTS), fc.record({ meetings: weightArb, cpu: weightArb, netIn: weightArb, netOut: weightArb, participants: weightArb })),
});

type GeneratedRequest = typeof requestArb extends fc.Arbitrary<infer R> ? R : never;

const SCALES = { cpuPermille: 1000, netInBytesPerSec: 125_000_000, netOutBytesPerSec: 125_000_000, participants: 1000 };
const DIMS = ["cpuPermille", "netInBytesPerSec", "netOutBytesPerSec", "participants"] as const;
const WEIGHT = { cpuPermille: "cpu", netInBytesPerSec: "netIn", netOutBytesPerSec: "netOut", participants: "participants" } as const;

/** Filters with every rule written out, then sorts the whole pool: nothing of the one-pass code is reused. */
function naivePlacement(nodes: GeneratedNode[], req: GeneratedRequest): string | undefined {
  const window = Math.floor(req.nowMs / req.burstWindowMs);
  const recentOf = (n: GeneratedNode) => n.placementTimes.filter((t) => Math.floor(t / req.burstWindowMs) >= window - 1).length;
  const usable = nodes.filter(
    (n) =>
      n.id !== req.exclude &&
      n.liveness === "ALIVE" &&
      !n.draining &&
      n.assigned < n.capacity &&
      DIMS.every((d) => n.limits[d] === 0 || n.load[d] < n.limits[d]) &&
      req.requiredLabels.every(([k, v]) => n.labels.some(([k2, v2]) => k2 === k && v2 === v)) &&
      !req.excludedLabels.some(([k, v]) => n.labels.some(([k2, v2]) => k2 === k && v2 === v)),
  );
  if (req.preferred !== undefined && usable.some((n) => n.id === req.preferred)) return req.preferred;
  const notHeldOut = usable.filter((n) => req.nowMs >= n.heldOutUntilMs);
  const eligible = notHeldOut.length > 0 ? notHeldOut : usable;
  const inRegion = eligible.filter((n) => req.region !== "" && n.region === req.region);
  const pool = inRegion.length > 0 ? inRegion : eligible;
  const score = (n: GeneratedNode) => {
    let s = req.weights.meetings * ((n.assigned + recentOf(n)) / n.capacity);
    for (const d of DIMS) s += req.weights[WEIGHT[d]] * (n.load[d] / (n.limits[d] > 0 ? n.limits[d] : SCALES[d]));
    return s;
  };
  const sorted = [...pool].sort((a, b) => {
    if (score(a) !== score(b)) return score(a) < score(b) ? -1 : 1;
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

describe("placement by load against a naive scorer", () => {
  it("chooses what scoring and sorting every eligible node would (20,000 random clusters)", () => {
    fc.assert(
      fc.property(clusterArb, requestArb, (nodes, req) => {
        const fast = findPlacement(
          nodes.map((n) => asCandidate(n, req.burstWindowMs)),
          {
            region: req.region,
            requiredLabels: req.requiredLabels,
            excludedLabels: req.excludedLabels,
            nowMs: req.nowMs,
            burstWindowMs: req.burstWindowMs,
            weights: req.weights,
            ...(req.exclude === undefined ? {} : { excludeNodeId: req.exclude }),
            ...(req.preferred === undefined ? {} : { preferredNodeId: req.preferred }),
          },
        );
        expect(fast).toBe(naivePlacement(nodes, req));
      }),
      { numRuns: 20_000 },
    );
  });

  it("labelsShareAny equals a naive check", () => {
    fc.assert(
      fc.property(labelsArb, labelsArb, (labels, excluded) => {
        expect(labelsShareAny(labels, excluded)).toBe(excluded.some(([k, v]) => labels.some(([k2, v2]) => k2 === k && v2 === v)));
      }),
      { numRuns: 5_000 },
    );
  });
});
