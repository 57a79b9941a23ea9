/**
 * Flap damping: a node that keeps dying and coming back is held out of
 * placement for a while, so meetings stop landing on a server that will
 * probably lose them again.
 *
 * Rule: when a node is declared DEAD for the (K+1)-th time within W ms
 * (K = flapMaxDeaths, W = flapWindowMs), it is held out until that death's
 * time + flapHoldOutMs. Held out means placement passes it over while any
 * other node can take the meeting (see placement.ts: a last resort, not a
 * ban); the node may still register, heartbeat and keep what it hosts. Times are
 * the replicated clock (the leader's, stamped in commands).
 */
import type { CoordinatorStateConfig } from "./state-config.js";

export interface DeathRecord {
  /** The latest deaths within the window, oldest first; at most K+1. */
  readonly deathsMs: readonly number[];
  /** Held out of placement while the clock is below this (0: never held). */
  readonly heldOutUntilMs: number;
}

type FlapConfig = Pick<CoordinatorStateConfig, "flapMaxDeaths" | "flapWindowMs" | "flapHoldOutMs">;

/** The record after one more death at `nowMs`. */
export function recordDeath(before: DeathRecord, nowMs: number, config: FlapConfig): DeathRecord {
  const windowStart = nowMs - config.flapWindowMs;
  const deathsMs = [...before.deathsMs.filter((t) => t > windowStart), nowMs].slice(-(config.flapMaxDeaths + 1));
  const flapping = deathsMs.length > config.flapMaxDeaths;
  const heldOutUntilMs = flapping ? Math.max(before.heldOutUntilMs, nowMs + config.flapHoldOutMs) : before.heldOutUntilMs;
  return { deathsMs, heldOutUntilMs };
}

export function isHeldOut(heldOutUntilMs: number, nowMs: number): boolean {
  return nowMs < heldOutUntilMs;
}
