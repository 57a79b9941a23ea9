/**
 * Parameters of the replicated coordinator state. They steer apply, so
 * every member must run with the same values (like running the same code):
 * members with different values would diverge. They are not part of a
 * snapshot; change them on all members together.
 *
 * `validateStateConfig` runs first in the state machine's constructor; each
 * message names the field and its value.
 */
import { ConfigError } from "../raft/errors.js";
import type { CoordinatorBugs } from "./planted-bugs.js";
import { InvalidArgumentError } from "./errors.js";
import { DEFAULT_WEIGHTS, type PlacementWeights, validateWeights } from "./node-load.js";

export interface CoordinatorStateConfig {
  /** Largest checkpoint `state` accepted, in bytes (API default 256 KiB). */
  readonly maxCheckpointBytes: number;
  /**
   * Burst compensation: a placement counts as "recent" for between one and
   * two windows of this length (see recent-placements.ts), so a storm of
   * creates spreads out before the meetings' real load shows.
   */
  readonly burstWindowMs: number;
  /** Flap damping: a node declared DEAD more than this many times ... */
  readonly flapMaxDeaths: number;
  /** ... within this many ms ... */
  readonly flapWindowMs: number;
  /** ... is held out of placement for this many ms after the last death. */
  readonly flapHoldOutMs: number;
  /** How many audit entries the state keeps (the newest). */
  readonly auditLogSize: number;
  /** Test-only planted bugs (planted-bugs.ts); absent in production. */
  readonly bugs?: CoordinatorBugs;
  /**
   * About how many events (WatchEvents) the state keeps, the newest; the
   * oldest command's events go whole. A watcher further behind must start
   * again from the oldest kept.
   */
  readonly eventLogSize: number;
  /** How much each load dimension weighs in placement (node-load.ts). */
  readonly placementWeights: PlacementWeights;
  /**
   * Test-only: every placement from the index is compared with a scan of
   * every node, and the index with the nodes after every command; a
   * difference stops the member (BrokenInvariantError). O(nodes) per
   * command. The test suite turns it on for every member it runs
   * (CONVENE_CHECK_PLACEMENT_INDEX=1, vitest.config.ts).
   */
  readonly checkPlacementIndex?: boolean;
}

export function defaultStateConfig(): CoordinatorStateConfig {
  return {
    maxCheckpointBytes: 256 * 1024,
    burstWindowMs: 10_000,
    flapMaxDeaths: 3,
    flapWindowMs: 10 * 60_000,
    flapHoldOutMs: 5 * 60_000,
    auditLogSize: 1_000,
    eventLogSize: 20_000,
    placementWeights: DEFAULT_WEIGHTS,
    ...(process.env["CONVENE_CHECK_PLACEMENT_INDEX"] === "1" ? { checkPlacementIndex: true } : {}),
  };
}

function requireInteger(field: string, value: unknown, min: number): void {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw new ConfigError(`${field} must be an integer at least ${min}, got ${String(value)}`);
  }
}

/** Throws ConfigError naming the first field that breaks a rule. */
export function validateStateConfig(c: CoordinatorStateConfig): CoordinatorStateConfig {
  requireInteger("maxCheckpointBytes", c.maxCheckpointBytes, 1);
  requireInteger("burstWindowMs", c.burstWindowMs, 1);
  requireInteger("flapMaxDeaths", c.flapMaxDeaths, 1);
  requireInteger("flapWindowMs", c.flapWindowMs, 1);
  requireInteger("flapHoldOutMs", c.flapHoldOutMs, 0);
  requireInteger("auditLogSize", c.auditLogSize, 0);
  requireInteger("eventLogSize", c.eventLogSize, 1);
  try {
    validateWeights(c.placementWeights);
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw new ConfigError(err.message);
    throw err;
  }
  return c;
}
