/**
 * Burst compensation's memory: how many meetings were placed on a node
 * "recently", kept in O(1) space per node.
 *
 * Time (the leader's clock as stamped into commands, never a clock read in
 * apply) is cut into fixed windows of `windowMs`. A node keeps the count of
 * the window of its last placement and of the window before it. "Recent"
 * is both counts while the current window is the node's last one, only the
 * newer count during the next window, and nothing after that: a placement
 * stays recent for between one and two windows. Exact and deterministic,
 * with no list of timestamps to replicate.
 */
import { BrokenInvariantError } from "./errors.js";

export interface RecentPlacements {
  /** floor(time / windowMs) of the last placement counted. */
  bucket: number;
  /** Placements in window `bucket`. */
  current: number;
  /** Placements in window `bucket - 1`. */
  previous: number;
}

export function noRecentPlacements(): RecentPlacements {
  return { bucket: 0, current: 0, previous: 0 };
}

/** How many placements on the node count as recent at `nowMs`. */
export function countRecent(recent: Readonly<RecentPlacements>, nowMs: number, windowMs: number): number {
  const bucket = Math.floor(nowMs / windowMs);
  if (recent.bucket === bucket) return recent.current + recent.previous;
  if (recent.bucket === bucket - 1) return recent.current;
  return 0;
}

/**
 * Counts one placement at `nowMs`. The state's clock never goes backwards,
 * so `nowMs` is never in an earlier window than the last placement.
 */
export function notePlacement(recent: RecentPlacements, nowMs: number, windowMs: number): void {
  const bucket = Math.floor(nowMs / windowMs);
  if (bucket < recent.bucket) {
    throw new BrokenInvariantError(`placement at ${nowMs} ms is earlier than window ${recent.bucket} of ${windowMs} ms`);
  }
  if (bucket > recent.bucket) {
    recent.previous = bucket === recent.bucket + 1 ? recent.current : 0;
    recent.current = 0;
    recent.bucket = bucket;
  }
  recent.current++;
}
