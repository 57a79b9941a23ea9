/**
 * An array kept sorted by a total order, for placement's rankings
 * (placement-ranking.ts, placement-index.ts): a binary search finds where
 * an item goes or is, a splice puts it there or takes it out.
 */
import { BrokenInvariantError } from "./errors.js";

/** The first index whose item does not come before `item`. */
export function insertionPoint<T>(list: readonly T[], item: T, compare: (a: T, b: T) => number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compare(list[mid]!, item) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function insertSorted<T>(list: T[], item: T, compare: (a: T, b: T) => number): void {
  list.splice(insertionPoint(list, item, compare), 0, item);
}

/** Takes out `item` itself, which must be where its order puts it. */
export function removeSorted<T>(list: T[], item: T, compare: (a: T, b: T) => number, name: string): void {
  const i = insertionPoint(list, item, compare);
  if (list[i] !== item) throw new BrokenInvariantError(`${name} is not where its rank puts it`);
  list.splice(i, 1);
}
