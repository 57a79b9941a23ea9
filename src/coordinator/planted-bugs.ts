/**
 * Bugs of the coordinator's state machine planted on purpose, so the
 * whole-product simulation (test/sim-system) can show it catches each
 * class: test-only configuration, all off in production (no member reads
 * them from its config file). Each names the rule it breaks.
 */
export interface CoordinatorBugs {
  /** A meeting that moves to another node keeps its epoch (two owners of one epoch). */
  readonly moveWithoutEpochBump?: boolean;
  /** A checkpoint with a sequence below the stored one is stored (sequences go back). */
  readonly lowerSequenceAccepted?: boolean;
  /** Placement counts SUSPECT and draining nodes as eligible. */
  readonly placeOnDrainingOrSuspect?: boolean;
  /** Placement ignores the limits nodes declared. */
  readonly placeOverLimit?: boolean;
  /** A node that registers again keeps its meetings under the old generation's epochs (no new tenure). */
  readonly noNewTenure?: boolean;
  /** A planned move assigns the meeting on before it stores the final checkpoint (the new owner misses the last writes). */
  readonly moveBeforeFinalCheckpoint?: boolean;
}
