/**
 * The real coordinator state machine, watched: after each apply the
 * simulation's checker sees the decoded command, its outcome and the
 * state before and after, on every member. It changes nothing.
 */
import type { ApplyOutcome } from "../../src/coordinator/command-results.js";
import { type Command, decodeStampedCommand } from "../../src/coordinator/commands.js";
import { CoordinatorStateMachine, type CoordinatorStateMachineOptions } from "../../src/coordinator/coordinator-state-machine.js";
import type { CoordinatorQueries } from "../../src/coordinator/state.js";

/** What the checker needs of the state before an apply. */
export interface BeforeApply {
  /** Meeting id → epoch (0 when unknown). */
  readonly epochs: ReadonlyMap<string, number>;
  /** Meeting id → stored checkpoint sequence. */
  readonly sequences: ReadonlyMap<string, number>;
}

export interface ApplyObserver {
  applied(memberId: string, index: number, command: Command | undefined, outcome: ApplyOutcome, before: BeforeApply, after: CoordinatorQueries): void;
}

export class ObservedMachine extends CoordinatorStateMachine {
  constructor(
    private readonly memberId: string,
    private readonly observer: ApplyObserver,
    options: CoordinatorStateMachineOptions = {},
  ) {
    super(options);
  }

  override apply(command: Uint8Array, index: number): ApplyOutcome {
    const q = this.queries;
    const epochs = new Map<string, number>();
    const sequences = new Map<string, number>();
    for (const r of q.listMeetings()) {
      epochs.set(r.meetingId, r.epoch);
      const c = q.getCheckpoint(r.meetingId);
      if (c) sequences.set(r.meetingId, c.sequence);
    }
    let decoded: Command | undefined;
    try {
      decoded = decodeStampedCommand(command).command;
    } catch {
      decoded = undefined;
    }
    const outcome = super.apply(command, index);
    this.observer.applied(this.memberId, index, decoded, outcome, { epochs, sequences }, this.queries);
    return outcome;
  }
}
