/**
 * Bounded waits for a meeting's next placement. When a meeting's host
 * refuses a request and the coordinator still names that host (it has not
 * yet declared it dead: its lease or the 300 ms grace after a broken
 * connection is running), the HTTP proxy waits here for the route feed to
 * bring the move, and sends the request on to the new host, instead of
 * answering 503 at once and having the client come back a second later
 * (its Retry-After). The wait is no longer than that second, so the client
 * is never worse off, and it never hangs.
 *
 * Fed by the route cache (RouteCache.onStored) with every route it stores.
 */
import type { CachedRoute, Route } from "./route-cache.js";

interface Waiter {
  readonly stale: Route;
  readonly resolve: (route: CachedRoute | undefined) => void;
  readonly timer: NodeJS.Timeout;
}

export class MoveWatch {
  private readonly waiting = new Map<string, Set<Waiter>>();

  /** Waiting requests now (metrics, tests). */
  get size(): number {
    let n = 0;
    for (const set of this.waiting.values()) n += set.size;
    return n;
  }

  /**
   * Resolves with the first route stored for `stale.meetingId` that is not
   * `stale` (another node or a higher epoch), or undefined after `timeoutMs`.
   */
  next(stale: Route, timeoutMs: number): Promise<CachedRoute | undefined> {
    return new Promise((resolve) => {
      const set = this.waiting.get(stale.meetingId) ?? new Set<Waiter>();
      this.waiting.set(stale.meetingId, set);
      const waiter: Waiter = {
        stale,
        resolve,
        timer: setTimeout(() => this.settle(waiter, undefined), timeoutMs),
      };
      set.add(waiter);
    });
  }

  /** Called with every route the cache stores. */
  stored(route: CachedRoute): void {
    const set = this.waiting.get(route.meetingId);
    if (!set) return;
    for (const waiter of [...set]) {
      const s = waiter.stale;
      if (route.epoch > s.epoch || route.nodeId !== s.nodeId || route.address !== s.address) this.settle(waiter, route);
    }
  }

  /** Ends every wait (undefined): the gateway is closing. */
  close(): void {
    for (const set of [...this.waiting.values()]) for (const waiter of [...set]) this.settle(waiter, undefined);
  }

  private settle(waiter: Waiter, route: CachedRoute | undefined): void {
    clearTimeout(waiter.timer);
    const set = this.waiting.get(waiter.stale.meetingId);
    set?.delete(waiter);
    if (set?.size === 0) this.waiting.delete(waiter.stale.meetingId);
    waiter.resolve(route);
  }
}
