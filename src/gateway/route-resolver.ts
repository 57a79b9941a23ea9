/**
 * Where a meeting lives, for the gateway's routes: from the cache when it
 * is there (synchronously: the hot path allocates nothing), else from
 * Coordinator.GetRoute over any member, stored in the cache.
 *
 * Creation policy: with `create` on, a miss asks GetRoute(create=true), but
 * only after taking a token from the client's bucket (CreateLimiter); the
 * token is given back when the meeting existed already. A client without
 * tokens may still reach existing meetings (GetRoute create=false) and gets
 * 429 for new ones. With `create` off, unknown meetings are 404.
 *
 * Concurrent misses for one meeting share one GetRoute call.
 *
 * Routes for proxying (`lookup`, `reresolve`) pass the node address guard
 * (node-address-guard.ts) first; `locate` (GET /route, which connects to
 * nothing) does not.
 */
import type { Logger } from "pino";
import { ClientClosedError, type CoordinatorClient } from "./coordinator-client.js";
import type { CreateLimiter } from "./create-limiter.js";
import {
  CoordinatorAnswerError,
  CoordinatorCallError,
  CreateRateLimitedError,
  GatewayClosedError,
  MeetingNotFoundError,
  UpstreamUnavailableError,
  fromCoordinatorStatus,
} from "./errors.js";
import type { GatewayMetrics } from "./metrics.js";
import type { NodeAddressGuard } from "./node-address-guard.js";
import { MoveWatch } from "./move-watch.js";
import { type CachedRoute, type Route, type RouteCache, parseRoute } from "./route-cache.js";

/** GetRoute calls for one lookup while their answers are older than a route the feed brought meanwhile. */
const STALE_ANSWER_ATTEMPTS = 3;

interface Pending {
  readonly clientIp: string;
  readonly promise: Promise<CachedRoute>;
}

interface RouteMessage {
  meeting_id?: unknown;
  node_id?: unknown;
  address?: unknown;
  epoch?: unknown;
  created?: unknown;
  revision?: unknown;
}

export class RouteResolver {
  private readonly inflight = new Map<string, Pending>();
  private readonly moves = new MoveWatch();
  /** GetRoute calls made (tests read it). */
  asked = 0;

  constructor(
    private readonly cache: RouteCache,
    private readonly client: CoordinatorClient,
    /** undefined: creation is off at this gateway. */
    private readonly limiter: CreateLimiter | undefined,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
    /** Told when a linearizable read succeeded: a proof that a quorum answers. */
    private readonly onQuorum: () => void,
    /** Checks a route's address before it is proxied to; none: every address. */
    private readonly guard?: NodeAddressGuard,
  ) {
    cache.onStored((route) => this.moves.stored(route));
  }

  /**
   * Where to proxy a request for `meetingId`: the cached route, or a
   * promise of the coordinator's answer, its address checked by the guard.
   * Throws (or rejects with) a GatewayError.
   */
  lookup(meetingId: string, clientIp: string): CachedRoute | Promise<CachedRoute> {
    const found = this.locate(meetingId, clientIp);
    if (!this.guard) return found;
    if (found instanceof Promise) return found.then((route) => this.guarded(route));
    return this.guarded(found);
  }

  /** lookup without the address check: for GET /route, which reports the route and connects to nothing. */
  locate(meetingId: string, clientIp: string): CachedRoute | Promise<CachedRoute> {
    const hit = this.cache.get(meetingId);
    if (hit) {
      this.metrics.cacheHits++;
      return hit;
    }
    this.metrics.cacheMisses++;
    return this.ask(meetingId, clientIp);
  }

  private guarded(route: CachedRoute): CachedRoute {
    this.guard?.check(route);
    return route;
  }

  /**
   * After `stale` failed (its host refused, reset, timed out or said it does
   * not hold the meeting): drops it and asks the coordinator again, since
   * the meeting may have moved. The answer may be the same route while the
   * coordinator has not yet noticed the host is gone.
   */
  reresolve(stale: Route, clientIp: string): Promise<CachedRoute> | CachedRoute {
    this.cache.forget(stale);
    // The feed may have brought the new placement already.
    const fresh = this.cache.get(stale.meetingId);
    if (fresh) {
      // Never throws: callers chain on the answer (a refusal rejects).
      try {
        return this.guarded(fresh);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    this.metrics.cacheMisses++;
    return this.ask(stale.meetingId, clientIp).then((route) => this.guarded(route));
  }

  /**
   * After `stale`'s host could not be reached and the coordinator still
   * routes there: the meeting's next route as the feed brings it (its host
   * was declared dead and the meeting moved), its address checked by the
   * guard, or undefined after `timeoutMs`. Rejects when the guard refuses it.
   */
  async awaitMove(stale: Route, timeoutMs: number): Promise<CachedRoute | undefined> {
    const fresh = this.cache.get(stale.meetingId);
    const moved = fresh && (fresh.epoch > stale.epoch || fresh.nodeId !== stale.nodeId) ? fresh : await this.moves.next(stale, timeoutMs);
    return moved && this.guarded(moved);
  }

  /** Drops `stale` from the cache (its host failed) without asking again now. */
  forgetStale(stale: Route): void {
    this.cache.forget(stale);
  }

  private async ask(meetingId: string, clientIp: string): Promise<CachedRoute> {
    const pending = this.inflight.get(meetingId);
    if (pending) {
      try {
        return await pending.promise;
      } catch (err) {
        // Another client's creation limit is not this client's: ask on its own.
        if (!(err instanceof CreateRateLimitedError) || pending.clientIp === clientIp) throw err;
      }
    }
    const promise = this.askOnce(meetingId, clientIp).finally(() => {
      if (this.inflight.get(meetingId)?.promise === promise) this.inflight.delete(meetingId);
    });
    this.inflight.set(meetingId, { clientIp, promise });
    return promise;
  }

  private async askOnce(meetingId: string, clientIp: string): Promise<CachedRoute> {
    if (!this.limiter) return this.getRoute(meetingId, false);
    const now = Date.now();
    const waitS = this.limiter.take(clientIp, now);
    if (waitS > 0) {
      // Out of creations: existing meetings stay reachable.
      try {
        return await this.getRoute(meetingId, false);
      } catch (err) {
        if (!(err instanceof MeetingNotFoundError)) throw err;
        this.metrics.createsLimited.inc();
        throw new CreateRateLimitedError(
          `client ${clientIp} created too many meetings: meeting ${meetingId} does not exist and creating it would exceed the limit; retry in ${waitS} s`,
          waitS,
        );
      }
    }
    let created = false;
    try {
      return await this.getRoute(meetingId, true, (c) => (created ||= c));
    } finally {
      if (!created) this.limiter.refund(clientIp, Date.now());
    }
  }

  /**
   * GetRoute, stored in the cache. An answer older than a route the feed
   * brought while the call was in flight is refused by the cache; the call
   * is made again (a read begun after the feed's change sees it), a few
   * times at most.
   */
  private async getRoute(meetingId: string, create: boolean, onCreated?: (created: boolean) => void): Promise<CachedRoute> {
    let floor = 0;
    for (let attempt = 1; ; attempt++) {
      const lookup = this.cache.beginLookup(meetingId, floor);
      let answer: { route: Route; revision: number };
      try {
        answer = await this.askCoordinator(meetingId, create, onCreated);
      } catch (err) {
        lookup.abandon();
        throw err;
      }
      const stored = lookup.answer(answer.route, answer.revision);
      if (stored) return stored;
      floor = lookup.floor;
      if (attempt === STALE_ANSWER_ATTEMPTS) {
        throw new UpstreamUnavailableError(`meeting ${meetingId} is moving: the coordinator answered ${STALE_ANSWER_ATTEMPTS} times with a placement older than one this gateway already saw`);
      }
    }
  }

  /** One GetRoute call: the route, and the revision it was read at (0 from a member that does not say). */
  private async askCoordinator(meetingId: string, create: boolean, onCreated?: (created: boolean) => void): Promise<{ route: Route; revision: number }> {
    this.asked++;
    let res: RouteMessage;
    try {
      res = await this.client.unary<RouteMessage>("Coordinator", "GetRoute", { meeting_id: meetingId, create, region: "" });
    } catch (err) {
      if (err instanceof ClientClosedError) throw new GatewayClosedError(`route lookup of meeting ${meetingId} abandoned: the gateway is closing`, { cause: err });
      if (err instanceof CoordinatorCallError) throw fromCoordinatorStatus(err.status, err.details, meetingId, err);
      throw err;
    }
    this.onQuorum();
    onCreated?.(res.created === true);
    const route = parseRoute(res);
    const revision = res.revision ?? 0;
    if (typeof route === "string" || route.meetingId !== meetingId || typeof revision !== "number" || !Number.isSafeInteger(revision) || revision < 0) {
      const why =
        typeof route === "string" ? route : route.meetingId !== meetingId ? `it is the route of meeting ${route.meetingId}` : `revision ${String(revision)} is not a uint64`;
      this.logger.warn({ meetingId, why }, "GetRoute answered a route outside the contract");
      throw new CoordinatorAnswerError(`the coordinator's route for meeting ${meetingId} cannot be used: ${why}`);
    }
    if (res.created === true) this.logger.debug({ meetingId, node: route.nodeId }, "meeting created");
    return { route, revision };
  }
}
