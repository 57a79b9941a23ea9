/**
 * The replicated state machine a RaftNode drives. Apply must be
 * deterministic: the same commands in the same order give the same state
 * and results on every member.
 */
export interface StateMachine {
  /** Applies a committed command at `index`; the result goes to its proposer (on the leader). */
  apply(command: Uint8Array, index: number): unknown;
  /** The whole state as of the last applied command, for a snapshot. */
  snapshot(): Uint8Array;
  /** Replaces the whole state by a snapshot's. */
  restore(data: Uint8Array): void;
}
