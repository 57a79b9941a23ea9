/**
 * The replicated state machine a RaftDriver drives. Apply must be
 * deterministic: the same commands in the same order give the same state
 * and results on every member.
 */
export interface StateMachine {
  /** Applies a committed command at `index`; the result goes to its proposer (on the leader). */
  apply(command: Uint8Array, index: number): unknown;
  /** The whole state as of the last applied command, for a snapshot. */
  snapshot(): Uint8Array;
  /**
   * Optional, for a state too large to encode in one turn of the event
   * loop: the bytes `snapshot()` would return now, as steps of bounded
   * work. The state is captured at the first step; the driver yields to
   * its event loop between steps and applies later commands meanwhile.
   */
  snapshotSteps?(): Generator<void, Uint8Array, void>;
  /**
   * Optional: the same bytes as steps, for a copy that leaves the process
   * (a backup): the state keeps none of its memory shared with the result,
   * which snapshotSteps may do with the snapshot the storage keeps.
   */
  exportSteps?(): Generator<void, Uint8Array, void>;
  /** Replaces the whole state by a snapshot's. */
  restore(data: Uint8Array): void;
}
