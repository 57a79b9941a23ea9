/**
 * A simulated gateway: a process running the real route cache (RouteCache)
 * fed by the real route feed client (RouteFeed) on its own clock, through a
 * twin of the coordinator client whose WatchRoutes streams cross the RPC
 * network to a member's real route watch (route-watch.ts). Every route the
 * cache stores goes to the checker.
 */
import { EventEmitter } from "node:events";
import { pino } from "pino";
import type { SeededRandom } from "../../src/raft/index.js";
import { GatewayMetrics } from "../../src/gateway/metrics.js";
import { type Route, RouteCache, type RouteCacheBugs, parseRoute } from "../../src/gateway/route-cache.js";
import { type FeedClient, RouteFeed } from "../../src/gateway/route-feed.js";
import { ProcessClock } from "../../src/time/process-clock.js";
import { sleepOn } from "../../src/time/scheduler.js";
import type { VirtualScheduler } from "../../src/time/virtual-scheduler.js";
import type { SimCoordinatorMember } from "./coordinator-member.js";
import type { RpcNetwork } from "./rpc-network.js";

const silent = pino({ level: "silent" });

export interface GatewayObserver {
  /** The gateway process `incarnation` of `gatewayId` stored `route` in its cache. */
  gatewayStored(gatewayId: string, incarnation: number, route: Route): void;
}

export interface GatewaySetup {
  readonly world: VirtualScheduler;
  readonly rpc: RpcNetwork;
  readonly rng: SeededRandom;
  readonly memberIds: () => string[];
  readonly member: (id: string) => SimCoordinatorMember | undefined;
  readonly observer: GatewayObserver;
  readonly cacheBugs?: RouteCacheBugs;
}

class SimFeedStream extends EventEmitter {
  cancelled = false;
  cancelCall: (() => void) | undefined;

  cancel(): void {
    this.cancelled = true;
    this.cancelCall?.();
  }
}

export class SimGateway {
  clock: ProcessClock | undefined;
  cache: RouteCache | undefined;
  incarnation = 0;
  private cursor = 0;

  constructor(
    readonly id: string,
    private readonly setup: GatewaySetup,
  ) {}

  get up(): boolean {
    return this.clock !== undefined;
  }

  process(): { clock: ProcessClock; incarnation: number } | undefined {
    return this.clock ? { clock: this.clock, incarnation: this.incarnation } : undefined;
  }

  start(): void {
    if (this.clock) this.crash();
    const incarnation = ++this.incarnation;
    const clock = new ProcessClock(this.setup.world, { rate: 0.98 + 0.04 * this.setup.rng.next() });
    this.clock = clock;
    const cache = new RouteCache(this.setup.cacheBugs ?? {});
    this.cache = cache;
    cache.onStored((route) => this.setup.observer.gatewayStored(this.id, incarnation, route));
    this.cursor = this.setup.rng.intBelow(this.setup.memberIds().length);
    const metrics = new GatewayMetrics({ cacheSize: () => cache.size, openWebSockets: () => 0, feedRevision: () => cache.revision });
    const feed = new RouteFeed(this.client(clock), cache, metrics, silent, clock, () => this.setup.rng.next());
    clock.run(() => feed.start());
  }

  /**
   * A request for `meetingId` the cache cannot answer (a miss, or a route
   * found stale by the proxy): GetRoute on a member, and the answer stored
   * as RouteResolver stores it (through a lookup begun with the call). Answers can arrive after newer feed batches.
   */
  lookup(meetingId: string): void {
    const cache = this.cache;
    if (!cache) return;
    const ids = this.setup.memberIds();
    const to = ids[this.cursor % ids.length]!;
    const member = this.setup.member(to)!;
    const pending = cache.beginLookup(meetingId);
    this.setup.rpc
      .call(this.id, to, () => member.serve("GetRoute", { meeting_id: meetingId }, false, 2000), 2000)
      .then((answer) => {
        const route = parseRoute(answer as Record<string, unknown>);
        // A crashed gateway's cache is gone with its process.
        if (typeof route !== "string" && this.cache === cache) pending.answer(route, Number((answer as { revision?: number }).revision ?? 0));
        else pending.abandon();
      })
      .catch(() => pending.abandon());
  }

  crash(): void {
    this.incarnation++;
    this.clock?.kill();
    this.clock = undefined;
    this.cache = undefined;
    this.setup.rpc.clientCrashed(this.id);
  }

  /** The coordinator client's twin: streams over the RPC network, member after member. */
  private client(clock: ProcessClock): FeedClient {
    const { rpc, memberIds, member } = this.setup;
    return {
      openWatch: (request) => {
        const ids = memberIds();
        const to = ids[this.cursor % ids.length]!;
        const stream = new SimFeedStream();
        const from = Number((request as { from_revision?: number }).from_revision ?? 0);
        stream.cancelCall = rpc.openStream(
          this.id,
          to,
          (sink) => member(to)!.watchRoutes(from, sink),
          {
            data: (message) => stream.emit("data", message),
            end: (err) => {
              stream.emit("error", err);
              stream.emit("status", { code: err.code, details: err.details });
            },
          },
        );
        return { stream, address: to };
      },
      rotateFrom: (address) => {
        const ids = memberIds();
        if (ids[this.cursor % ids.length] === address) this.cursor++;
      },
      sleep: (ms) => sleepOn(clock, ms),
    };
  }
}
