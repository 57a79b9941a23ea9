/**
 * Placement without a scan of every node: the nodes that could take a
 * meeting, kept in placement's order across commands, so a create costs a
 * binary search and a look at the first few nodes instead of a pass over
 * all of them. At 10,000 nodes the pass took about 0.4 ms per create on
 * every member, and a follower applying a few thousand creates at once
 * held its event loop for over a second: longer than an election timeout.
 *
 * It answers exactly what `findPlacement` would, or says it cannot:
 *   - It files every node that is ALIVE, not draining, has room and is
 *     under its limits (what no request can relax), by placement's rank
 *     (placement.ts rules 5 and 6) as of the current burst window.
 *   - A request's own filters (labels, excluded labels, the node being
 *     evacuated) and flap damping's hold-out are checked on the nodes in
 *     rank order, so the first that passes is the best one not held out:
 *     in the request's region first (a list of its own), then anywhere.
 *   - When no node passes, the answer can only come from the held-out
 *     nodes (a last resort), and the caller scans: rare, and exact.
 *
 * A rank depends on the clock only through burst compensation's count of
 * recent placements, which changes when a new window starts. Nodes with
 * recent placements are remembered and re-ranked when the window turns;
 * every other node's count is zero and stays zero until it is placed on,
 * which re-ranks it anyway.
 *
 * The state must report every change to a node's placement inputs
 * (liveness, draining, capacity, region, labels, limits, load, assigned,
 * recent placements, hold-out) with `refile`. `check` compares the index
 * with the nodes; the tests run it after every command.
 */
import { BrokenInvariantError } from "./errors.js";
import { isHeldOut } from "./flap-damping.js";
import { NO_LABELS, compareStrings } from "./labels.js";
import type { NodeRecord } from "./model.js";
import { DEFAULT_WEIGHTS, type PlacementWeights } from "./node-load.js";
import { type PlacementRequest, compareRelativeLoad, ineligibility, scoreOf } from "./placement.js";
import { insertSorted, removeSorted } from "./sorted-list.js";

/** A filed node, with the inputs of its rank as they were when it was filed. */
interface Entry {
  readonly node: NodeRecord;
  readonly id: string;
  readonly region: string;
  readonly capacity: number;
  /** assigned + recent placements */
  readonly weight: number;
  readonly score: number;
}

/** Placement's order (placement.ts compareScored) on the filed values. */
function compareEntries(a: Entry, b: Entry): number {
  if (a.score !== b.score) return a.score < b.score ? -1 : 1;
  const byLoad = compareRelativeLoad(a.weight, a.capacity, b.weight, b.capacity);
  return byLoad !== 0 ? byLoad : compareStrings(a.id, b.id);
}

/** Nodes re-ranked one at a time when a burst window turns; more are sorted anew. */
const REFILED_ONE_BY_ONE = 32;

/** `findPlacement` cannot be answered from the index: scan. */
export const SCAN = Symbol("scan");

export class PlacementIndex {
  private readonly all: Entry[] = [];
  private readonly byRegion = new Map<string, Entry[]>();
  private readonly filed = new Map<string, Entry>();
  /** Filed nodes whose rank counted recent placements: re-ranked when the window turns. */
  private readonly withRecent = new Set<string>();
  /** The burst window the ranks are as of. */
  private window = -1;

  constructor(
    private readonly burstWindowMs: number,
    private readonly weights: PlacementWeights,
  ) {}

  /** Files `node` anew (or takes it out) after a change to its placement inputs. */
  refile(node: NodeRecord, nowMs: number): void {
    this.turnWindow(nowMs);
    this.file(node, nowMs);
  }

  /** Takes a node out for good (it was forgotten). */
  remove(nodeId: string): void {
    this.unfile(nodeId);
  }

  /** Files every node, as after a restore. */
  rebuild(nodes: Iterable<NodeRecord>, nowMs: number): void {
    this.all.length = 0;
    this.byRegion.clear();
    this.filed.clear();
    this.withRecent.clear();
    this.window = Math.floor(nowMs / this.burstWindowMs);
    const entries: Entry[] = [];
    for (const node of nodes) {
      const entry = this.entryOf(node, nowMs);
      if (entry) entries.push(entry);
    }
    entries.sort(compareEntries);
    for (const entry of entries) {
      this.all.push(entry);
      this.regionList(entry.region).push(entry);
      this.note(entry);
    }
  }

  /**
   * The node `findPlacement(nodes, req)` chooses; SCAN when that can only
   * be a held-out node or none (the caller scans), or when `req` weighs by
   * other weights or another window than the index ranks by. A preferred
   * node is the caller's to check first (rule 2).
   */
  best(req: PlacementRequest): string | typeof SCAN {
    // A request without weights is scored by the defaults (placement.ts), which may not be the index's.
    if ((req.weights ?? DEFAULT_WEIGHTS) !== this.weights || req.burstWindowMs !== this.burstWindowMs) return SCAN;
    this.turnWindow(req.nowMs);
    if (req.region !== "") {
      const inRegion = this.firstPassing(this.byRegion.get(req.region), req);
      if (inRegion !== undefined) return inRegion;
    }
    return this.firstPassing(this.all, req) ?? SCAN;
  }

  /** Throws BrokenInvariantError when a node is filed otherwise than its inputs say. O(nodes). */
  check(nodes: Iterable<NodeRecord>, nowMs: number): void {
    this.turnWindow(nowMs);
    let expected = 0;
    for (const node of nodes) {
      const want = this.entryOf(node, nowMs);
      const have = this.filed.get(node.id);
      if (!want) {
        if (have) throw new BrokenInvariantError(`placement index files node ${node.id}, which cannot take a meeting`);
        continue;
      }
      expected++;
      if (!have || compareEntries(have, want) !== 0 || have.region !== want.region) {
        throw new BrokenInvariantError(`placement index files node ${node.id} by stale inputs (score ${have?.score} for ${want.score}, weight ${have?.weight} for ${want.weight})`);
      }
    }
    if (expected !== this.filed.size || this.all.length !== expected) throw new BrokenInvariantError(`placement index files ${this.filed.size} nodes, ${expected} can take a meeting`);
    for (let i = 1; i < this.all.length; i++) {
      if (compareEntries(this.all[i - 1]!, this.all[i]!) >= 0) throw new BrokenInvariantError(`placement index is out of order at ${this.all[i]!.id}`);
    }
  }

  private firstPassing(list: readonly Entry[] | undefined, req: PlacementRequest): string | undefined {
    if (list === undefined) return undefined;
    for (const entry of list) {
      if (isHeldOut(entry.node.heldOutUntilMs, req.nowMs)) continue;
      if (ineligibility(entry.node, req) === "") return entry.id;
    }
    return undefined;
  }

  /**
   * A new burst window lowers the recent counts of the nodes placed on
   * lately: re-rank them. One by one costs two splices of the whole list
   * each; at 10,000 nodes with thousands placed on in a window that held
   * a member for 500-700 ms every window, so past a few, every filed node
   * is ranked and sorted anew (a few ms).
   */
  private turnWindow(nowMs: number): void {
    const window = Math.floor(nowMs / this.burstWindowMs);
    if (window === this.window) return;
    if (window < this.window) throw new BrokenInvariantError(`placement index asked at ${nowMs} ms, before window ${this.window}`);
    this.window = window;
    if (this.withRecent.size <= REFILED_ONE_BY_ONE) {
      for (const id of [...this.withRecent]) this.file(this.filed.get(id)!.node, nowMs);
      return;
    }
    this.rebuild([...this.filed.values()].map((entry) => entry.node), nowMs);
  }

  private file(node: NodeRecord, nowMs: number): void {
    this.unfile(node.id);
    const entry = this.entryOf(node, nowMs);
    if (!entry) return;
    insertSorted(this.all, entry, compareEntries);
    insertSorted(this.regionList(entry.region), entry, compareEntries);
    this.note(entry);
  }

  private note(entry: Entry): void {
    this.filed.set(entry.id, entry);
    if (entry.weight !== entry.node.assigned) this.withRecent.add(entry.id);
  }

  private unfile(nodeId: string): void {
    const entry = this.filed.get(nodeId);
    if (!entry) return;
    removeSorted(this.all, entry, compareEntries, `placement index's node ${entry.id}`);
    const regional = this.regionList(entry.region);
    removeSorted(regional, entry, compareEntries, `placement index's node ${entry.id}`);
    if (regional.length === 0) this.byRegion.delete(entry.region);
    this.filed.delete(nodeId);
    this.withRecent.delete(nodeId);
  }

  private regionList(region: string): Entry[] {
    let list = this.byRegion.get(region);
    if (!list) this.byRegion.set(region, (list = []));
    return list;
  }

  /** The node's entry, or undefined when no request could place on it. */
  private entryOf(node: NodeRecord, nowMs: number): Entry | undefined {
    const req: PlacementRequest = { region: "", requiredLabels: NO_LABELS, nowMs, burstWindowMs: this.burstWindowMs, weights: this.weights };
    if (ineligibility(node, req) !== "") return undefined;
    const { weight, score } = scoreOf(node, req);
    return { node, id: node.id, region: node.region, capacity: node.capacity, weight, score };
  }
}
