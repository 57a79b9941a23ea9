/**
 * The placement index answers exactly what a scan of every node
 * (findPlacement) answers, across random clusters and random sequences of
 * changes: placements and meetings taken away, liveness, draining,
 * capacity, region, labels, limits and load changing, nodes held out, and
 * the clock passing burst windows (which lowers recent counts without any
 * node being touched). `check` finds a node whose change was not reported.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Labels } from "../src/coordinator/labels.js";
import type { NodeRecord } from "../src/coordinator/model.js";
import { DEFAULT_WEIGHTS, NO_LIMITS, NO_LOAD, type PlacementWeights } from "../src/coordinator/node-load.js";
import { type PlacementRequest, findPlacement } from "../src/coordinator/placement.js";
import { PlacementIndex, SCAN } from "../src/coordinator/placement-index.js";
import { notePlacement } from "../src/coordinator/recent-placements.js";

const WINDOW = 1000;
const REGIONS = ["", "eu", "us"];
const LABEL_SETS: Labels[] = [[], [["rack", "a"]], [["rack", "b"]], [["rack", "a"], ["tier", "gold"]]];

function node(i: number, capacity: number, region: string, labels: Labels): NodeRecord {
  return {
    id: `s${String(i).padStart(2, "0")}`,
    address: `10.0.0.${i}:9000`,
    capacity,
    region,
    labels,
    generation: 1,
    incarnation: "",
    liveness: "ALIVE",
    draining: false,
    deathsMs: [],
    heldOutUntilMs: 0,
    recent: { bucket: 0, current: 0, previous: 0 },
    assigned: 0,
    limits: NO_LIMITS,
    load: NO_LOAD,
    drainDeadlineMs: 0,
  };
}

/** One change to the cluster, or a placement; `k` picks the node, `v` the new value. */
type Step = { kind: number; k: number; v: number };
const stepArb: fc.Arbitrary<Step> = fc.record({ kind: fc.integer({ min: 0, max: 15 }), k: fc.nat(63), v: fc.nat(1_000_000) });

interface Request {
  region: string;
  requiredLabels: Labels;
  excludedLabels: Labels;
  excludeNodeId: string | undefined;
}
const requestArb: fc.Arbitrary<Request> = fc.record({
  region: fc.constantFrom("", "", "eu", "us", "ap"),
  requiredLabels: fc.constantFrom<Labels>([], [], [], [["rack", "a"]], [["tier", "gold"]]),
  excludedLabels: fc.constantFrom<Labels>([], [], [], [["rack", "b"]]),
  excludeNodeId: fc.constantFrom(undefined, undefined, "s00", "s03"),
});

const weightsArb = fc.constantFrom<PlacementWeights>(DEFAULT_WEIGHTS, { meetings: 1, cpu: 0, netIn: 0, netOut: 0, participants: 0 }, { meetings: 0, cpu: 1, netIn: 0, netOut: 0, participants: 2 }, { meetings: 2, cpu: 1, netIn: 0.5, netOut: 1, participants: 3 });

const clusterArb = (minLength: number, maxLength: number) =>
  fc.array(fc.record({ capacity: fc.integer({ min: 1, max: 6 }), region: fc.constantFrom(...REGIONS), labels: fc.nat(LABEL_SETS.length - 1) }), { minLength, maxLength });

/**
 * Applies `step` to the nodes as the state would and reports the node to
 * the index (unless `forget` says which step to leave unreported); a
 * placement step asks both the index and a scan and returns both answers.
 */
function apply(nodes: NodeRecord[], index: PlacementIndex, clock: { nowMs: number }, step: Step, weights: PlacementWeights, request: Request): [string | undefined, string | undefined] | undefined {
  const n = nodes[step.k % nodes.length]!;
  const touch = () => index.refile(n, clock.nowMs);
  switch (step.kind) {
    case 0:
    case 1:
    case 2:
    case 3:
    case 4: {
      const req: PlacementRequest = {
        region: request.region,
        requiredLabels: request.requiredLabels,
        excludedLabels: request.excludedLabels,
        nowMs: clock.nowMs,
        burstWindowMs: WINDOW,
        weights,
        ...(request.excludeNodeId === undefined ? {} : { excludeNodeId: request.excludeNodeId }),
      };
      const best = index.best(req);
      const fromIndex = best === SCAN ? findPlacement(nodes, req) : best;
      const scanned = findPlacement(nodes, req);
      if (scanned !== undefined) {
        const chosen = nodes.find((x) => x.id === scanned)!;
        chosen.assigned++;
        notePlacement(chosen.recent, clock.nowMs, WINDOW);
        index.refile(chosen, clock.nowMs);
      }
      return [fromIndex, scanned];
    }
    case 5:
      if (n.assigned > 0) n.assigned--;
      touch();
      return undefined;
    case 6:
      n.liveness = (["ALIVE", "ALIVE", "SUSPECT", "DEAD"] as const)[step.v % 4]!;
      touch();
      return undefined;
    case 7:
      n.draining = step.v % 3 === 0;
      touch();
      return undefined;
    case 8:
      n.capacity = 1 + (step.v % 8);
      touch();
      return undefined;
    case 9:
      n.region = REGIONS[step.v % REGIONS.length]!;
      n.labels = LABEL_SETS[step.v % LABEL_SETS.length]!;
      touch();
      return undefined;
    case 10:
      n.limits = step.v % 2 === 0 ? NO_LIMITS : { cpuPermille: 500, netInBytesPerSec: 0, netOutBytesPerSec: 0, participants: 20 };
      touch();
      return undefined;
    case 11:
      n.load = { cpuPermille: step.v % 1000, netInBytesPerSec: step.v % 3 === 0 ? 1_000_000 : 0, netOutBytesPerSec: 0, participants: step.v % 30, reportedAtMs: clock.nowMs };
      touch();
      return undefined;
    case 12:
      n.heldOutUntilMs = step.v % 2 === 0 ? 0 : clock.nowMs + (step.v % 3000);
      touch();
      return undefined;
    default:
      // Time passes, sometimes across one or more burst windows; no node is told.
      clock.nowMs += step.v % (3 * WINDOW);
      return undefined;
  }
}

describe("PlacementIndex", () => {
  const sameAsScan = (cluster: { capacity: number; region: string; labels: number }[], steps: Step[], weights: PlacementWeights, a: Request, b: Request) => {
    const nodes = cluster.map((c, i) => node(i, c.capacity, c.region, LABEL_SETS[c.labels]!));
    const clock = { nowMs: 5 * WINDOW };
    const index = new PlacementIndex(WINDOW, weights);
    index.rebuild(nodes, clock.nowMs);
    for (const [i, step] of steps.entries()) {
      const answers = apply(nodes, index, clock, step, weights, i % 2 === 0 ? a : b);
      if (answers) expect(answers[0]).toBe(answers[1]);
      index.check(nodes, clock.nowMs);
    }
  };

  it("chooses what a scan of every node chooses, change after change (2,000 random runs)", () => {
    fc.assert(fc.property(clusterArb(1, 30), fc.array(stepArb, { minLength: 1, maxLength: 120 }), weightsArb, requestArb, requestArb, sameAsScan), { numRuns: 2000 });
  });

  it("still does when so many nodes were placed on in a window that the turn sorts them all anew (300 random runs)", () => {
    // Placements weigh most: dozens of nodes gather recent placements before the clock turns a window.
    const busyStep = fc.oneof({ weight: 6, arbitrary: stepArb.map((st) => ({ ...st, kind: st.kind % 5 })) }, { weight: 1, arbitrary: stepArb });
    fc.assert(fc.property(clusterArb(40, 120), fc.array(busyStep, { minLength: 100, maxLength: 400 }), weightsArb, requestArb, requestArb, sameAsScan), { numRuns: 300 });
  });

  it("asks for a scan when a request weighs otherwise than the index ranks", () => {
    const nodes = [node(0, 4, "", [])];
    const index = new PlacementIndex(WINDOW, DEFAULT_WEIGHTS);
    index.rebuild(nodes, 0);
    const req: PlacementRequest = { region: "", requiredLabels: [], nowMs: 0, burstWindowMs: WINDOW, weights: { ...DEFAULT_WEIGHTS, cpu: 2 } };
    expect(index.best(req)).toBe(SCAN);
    expect(index.best({ ...req, weights: DEFAULT_WEIGHTS })).toBe("s00");
    expect(index.best({ ...req, weights: DEFAULT_WEIGHTS, burstWindowMs: WINDOW * 2 })).toBe(SCAN);
    // No weights means the defaults: answered by an index of the defaults, a scan for any other.
    const { weights: _, ...unweighted } = req;
    expect(index.best(unweighted)).toBe("s00");
    const other = new PlacementIndex(WINDOW, { ...DEFAULT_WEIGHTS, cpu: 2 });
    other.rebuild(nodes, 0);
    expect(other.best(unweighted)).toBe(SCAN);
  });

  it("asks for a scan when only held-out nodes could take the meeting (placement's last resort)", () => {
    const nodes = [node(0, 4, "", []), node(1, 4, "", [])];
    nodes[0]!.heldOutUntilMs = 10_000;
    nodes[1]!.liveness = "SUSPECT";
    const index = new PlacementIndex(WINDOW, DEFAULT_WEIGHTS);
    index.rebuild(nodes, 0);
    const req: PlacementRequest = { region: "", requiredLabels: [], nowMs: 0, burstWindowMs: WINDOW, weights: DEFAULT_WEIGHTS };
    expect(index.best(req)).toBe(SCAN);
    expect(findPlacement(nodes, req)).toBe("s00");
    // Once the hold-out ends, the index answers by itself.
    expect(index.best({ ...req, nowMs: 10_000 })).toBe("s00");
  });

  it("re-ranks a node whose recent placements age out when a new burst window starts", () => {
    const nodes = [node(0, 10, "", []), node(1, 10, "", [])];
    const index = new PlacementIndex(WINDOW, DEFAULT_WEIGHTS);
    index.rebuild(nodes, 0);
    const req = (nowMs: number): PlacementRequest => ({ region: "", requiredLabels: [], nowMs, burstWindowMs: WINDOW, weights: DEFAULT_WEIGHTS });
    // s00 takes two meetings (recent: 2), s01 three placed long ago (recent: 0): s01 weighs 3, s00 4.
    nodes[1]!.assigned = 3;
    index.refile(nodes[1]!, 0);
    for (let k = 0; k < 2; k++) {
      nodes[0]!.assigned++;
      notePlacement(nodes[0]!.recent, 0, WINDOW);
      index.refile(nodes[0]!, 0);
    }
    expect(index.best(req(0))).toBe("s01");
    // Two windows later s00's placements no longer count: it weighs 2 and leads, though nobody told the index.
    expect(index.best(req(2 * WINDOW))).toBe("s00");
    expect(findPlacement(nodes, req(2 * WINDOW))).toBe("s00");
  });

  it("check finds a node whose change was not reported", () => {
    const nodes = [node(0, 4, "", []), node(1, 4, "", [])];
    const index = new PlacementIndex(WINDOW, DEFAULT_WEIGHTS);
    index.rebuild(nodes, 0);
    index.check(nodes, 0);
    nodes[1]!.load = { ...NO_LOAD, cpuPermille: 900 };
    expect(() => index.check(nodes, 0)).toThrow(/s01 by stale inputs/);
    index.refile(nodes[1]!, 0);
    nodes[0]!.draining = true;
    expect(() => index.check(nodes, 0)).toThrow(/files node s00, which cannot take a meeting/);
  });
});
