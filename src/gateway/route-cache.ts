/**
 * The gateway's table of where meetings live: fed in order by the route
 * feed (RouteFeed.WatchRoutes batches) and, on a miss, by GetRoute answers.
 * Pure bookkeeping: no I/O and no clock.
 *
 * Rules:
 * - A feed batch with `reset` replaces the table: with the batches of the
 *   same revision that follow it (a big table comes in chunks), it is the
 *   whole table as of that revision.
 * - A change with an empty node id drops the meeting (ended, or waiting
 *   unassigned).
 * - Epochs only grow for one meeting, so an answer older than what is cached
 *   (a GetRoute that raced a move, a feed member that lags) never replaces
 *   a newer route; an equal epoch is the same placement.
 * - A GetRoute answer is refused when its epoch is older than any this
 *   cache held for the meeting while the call was in flight: the feed may
 *   have delivered the move and then dropped the meeting (its new node died
 *   too) before a slow answer, read before the move, came back.
 * - A GetRoute answer read at a revision the feed has not reached yet is
 *   newer than what the feed will bring for that meeting up to that
 *   revision: those changes (a route, a removal, a reset's table) are
 *   skipped, or a lagging feed would take the meeting back to an older
 *   epoch, or drop it and let an older epoch in.
 */
import { isHostPort } from "./config.js";

export interface Route {
  readonly meetingId: string;
  readonly nodeId: string;
  readonly address: string;
  readonly epoch: number;
}

/** A cached route, with its GET /route body serialised once on first use (the hot path). */
export interface CachedRoute extends Route {
  json: string | undefined;
}

/** One change of a RouteBatch, as received (proto field names). */
export interface RouteChangeMessage {
  readonly meeting_id?: unknown;
  readonly node_id?: unknown;
  readonly address?: unknown;
  readonly epoch?: unknown;
}

const MEETING_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const NODE_ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * A route from a coordinator message (GetRoute's Route or a feed change), or
 * a reason it cannot be used. The address is checked here because the proxy
 * connects to it: only a plain "host:port" the coordinator registered.
 */
export function parseRoute(m: RouteChangeMessage): Route | string {
  if (typeof m.meeting_id !== "string" || !MEETING_ID.test(m.meeting_id)) return `meeting_id ${JSON.stringify(m.meeting_id)} is not a meeting id`;
  if (typeof m.node_id !== "string" || !NODE_ID.test(m.node_id)) return `node_id ${JSON.stringify(m.node_id)} is not a node id`;
  if (!isHostPort(m.address)) return `address ${JSON.stringify(m.address)} of node ${m.node_id} is not "host:port"`;
  if (typeof m.epoch !== "number" || !Number.isSafeInteger(m.epoch) || m.epoch < 0) return `epoch ${String(m.epoch)} is not a uint64`;
  return { meetingId: m.meeting_id, nodeId: m.node_id, address: m.address, epoch: m.epoch };
}

export function routeJson(r: Route): string {
  return JSON.stringify({ meetingId: r.meetingId, nodeId: r.nodeId, address: r.address, epoch: r.epoch });
}

function sameRoute(a: Route, b: Route): boolean {
  return a.epoch === b.epoch && a.nodeId === b.nodeId && a.address === b.address;
}

export interface BatchOutcome {
  /** Changes that altered the table (set, replaced or dropped). */
  readonly applied: number;
  /** Changes left out because they broke the contract. */
  readonly invalid: readonly string[];
}

/** A bug planted on purpose, for the whole-product simulation to catch (test-only; off in production). */
export interface RouteCacheBugs {
  /** Feed entries and GetRoute answers are applied as they come, one older than the cached route included (out of order). */
  readonly applyOutOfOrder?: boolean;
}

/** A GetRoute in flight for one meeting (RouteCache.beginLookup). */
export interface RouteLookup {
  /**
   * Stores the answer, read at `revision` (0: not known), unless the cache
   * held a newer epoch for the meeting at some moment since the lookup
   * began; returns the entry now cached, or undefined when the answer was
   * refused and nothing is cached (ask again). Ends the lookup.
   */
  answer(route: Route, revision?: number): CachedRoute | undefined;
  /** Ends the lookup without an answer (the call failed). */
  abandon(): void;
  /** The newest epoch cached for the meeting since the lookup began: the least a retry may accept. */
  readonly floor: number;
}

interface OpenLookup {
  /** The newest epoch cached for the meeting since the lookup began. */
  floor: number;
}

export class RouteCache {
  private routes = new Map<string, CachedRoute>();
  /** Told of every route stored (a new meeting, a move, a newer epoch), after it is in the table. */
  private readonly storedListeners: ((route: CachedRoute) => void)[] = [];
  /** The table a reset replaced, kept while chunks of that reset's revision arrive (moves, newer epochs). */
  private replaced: { revision: number; routes: Map<string, CachedRoute> } | undefined;
  /** Lookups in flight per meeting; only these meetings keep a floor, so ended meetings leave nothing behind. */
  private readonly lookups = new Map<string, Set<OpenLookup>>();
  /**
   * Meetings known from a GetRoute answer read at a revision the feed has
   * not reached: that revision. Dropped once the feed passes it.
   */
  private readonly ahead = new Map<string, number>();
  /** The feed revision the table is at (0: nothing from the feed yet). */
  revision = 0;

  constructor(private readonly bugs: RouteCacheBugs = {}) {}

  get size(): number {
    return this.routes.size;
  }

  get(meetingId: string): CachedRoute | undefined {
    return this.routes.get(meetingId);
  }

  /** Calls `listener` with every route stored from now on (MoveWatch). */
  onStored(listener: (route: CachedRoute) => void): void {
    this.storedListeners.push(listener);
  }

  /** Every cached route (the dashboard's list of meetings). */
  all(): IterableIterator<CachedRoute> {
    return this.routes.values();
  }

  /**
   * Begins a GetRoute for `meetingId`: its answer goes through the lookup,
   * which knows what the cache held meanwhile. A retry passes the refused
   * lookup's floor as `atLeast`.
   */
  beginLookup(meetingId: string, atLeast = 0): RouteLookup {
    const open: OpenLookup = { floor: Math.max(atLeast, this.routes.get(meetingId)?.epoch ?? 0) };
    let set = this.lookups.get(meetingId);
    if (!set) this.lookups.set(meetingId, (set = new Set()));
    set.add(open);
    const end = (): void => {
      if (set.delete(open) && set.size === 0) this.lookups.delete(meetingId);
    };
    return {
      answer: (route, revision = 0) => {
        end();
        const cached = this.routes.get(route.meetingId);
        const older = route.epoch < open.floor || (cached !== undefined && cached.epoch > route.epoch);
        if (older && !this.bugs.applyOutOfOrder) return cached;
        if (revision > this.revision && !this.bugs.applyOutOfOrder) this.ahead.set(route.meetingId, Math.max(revision, this.ahead.get(route.meetingId) ?? 0));
        if (cached && sameRoute(cached, route)) return cached;
        return this.put(route);
      },
      abandon: end,
      get floor() {
        return open.floor;
      },
    };
  }

  /** Drops a route found stale, unless the cache already holds another (newer) placement. */
  forget(stale: Route): void {
    const cached = this.routes.get(stale.meetingId);
    if (cached && cached.epoch === stale.epoch && cached.nodeId === stale.nodeId) this.routes.delete(stale.meetingId);
  }

  /** Applies one feed batch in order; see the rules above. */
  applyBatch(revision: number, reset: boolean, changes: readonly RouteChangeMessage[]): BatchOutcome {
    const invalid: string[] = [];
    let applied = 0;
    if (reset) {
      this.replaced = { revision, routes: this.routes };
      this.routes = new Map();
      // Routes as new as the table or newer stay; the table's rows for them are skipped below.
      for (const [meetingId, at] of this.ahead) {
        const route = at >= revision ? this.replaced.routes.get(meetingId) : undefined;
        if (route) this.routes.set(meetingId, route);
      }
    } else if (this.replaced && revision > this.replaced.revision) {
      this.replaced = undefined;
    }
    // A table comes in chunks of one revision; only the first says reset.
    const previous = this.replaced?.routes;
    for (const change of changes) {
      const meetingId = change.meeting_id;
      if (typeof meetingId === "string" && revision <= (this.ahead.get(meetingId) ?? 0) && !this.bugs.applyOutOfOrder) continue;
      if (change.node_id === "" && typeof meetingId === "string") {
        if (this.routes.delete(meetingId)) applied++;
        continue;
      }
      const route = parseRoute(change);
      if (typeof route === "string") {
        invalid.push(route);
        continue;
      }
      const current = this.routes.get(route.meetingId);
      const before = this.bugs.applyOutOfOrder ? undefined : (current ?? previous?.get(route.meetingId));
      if (current && current.epoch > route.epoch && !this.bugs.applyOutOfOrder) continue;
      if (!current && before && before.epoch > route.epoch) {
        // A table from a lagging member: keep the newer route this gateway already learned.
        this.routes.set(route.meetingId, before);
        continue;
      }
      if (before && sameRoute(before, route)) {
        // Unchanged: keep the entry (and its serialised body).
        this.routes.set(route.meetingId, before);
        continue;
      }
      this.put(route);
      applied++;
    }
    this.revision = revision;
    for (const [meetingId, at] of this.ahead) if (at <= revision) this.ahead.delete(meetingId);
    return { applied, invalid };
  }

  private put(route: Route): CachedRoute {
    const entry: CachedRoute = { meetingId: route.meetingId, nodeId: route.nodeId, address: route.address, epoch: route.epoch, json: undefined };
    this.routes.set(route.meetingId, entry);
    for (const open of this.lookups.get(route.meetingId) ?? []) open.floor = Math.max(open.floor, route.epoch);
    for (const listener of this.storedListeners) listener(entry);
    return entry;
  }
}
