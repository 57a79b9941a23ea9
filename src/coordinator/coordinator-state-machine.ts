/**
 * The coordinator's replicated state machine: what every member's RaftDriver
 * drives. The RaftDriver calls `apply(entry.data, entry.index)` for each
 * committed command in log order (after `restore` of the latest snapshot
 * at start), `snapshot()` when it compacts, and `restore()` when a leader
 * sends a snapshot.
 *
 * `apply` decodes, dispatches to apply-command.ts, and returns an
 * ApplyOutcome (result + assignment events) that the RaftDriver resolves the
 * proposer's promise with. Bytes that do not decode to a valid command get
 * an INVALID_ARGUMENT result and change nothing but the audit log. It
 * throws only on a broken invariant (e.g. an index applied twice): a member
 * must stop rather than diverge.
 *
 * The services read through `queries` and learn of changes through
 * `subscribe`: listeners run synchronously after each apply (every member,
 * not only the proposer: each feeds its own watch streams) and after each
 * restore (watchers must then resynchronise from `meetingsOf`).
 */
import type { StateMachine } from "../raft-runtime/state-machine.js";
import { applyCommand } from "./apply-command.js";
import type { ApplyOutcome } from "./command-results.js";
import { type Command, type CommandStamp, decodeStampedCommand } from "./commands.js";
import { BrokenInvariantError, InvalidArgumentError, failureOf } from "./errors.js";
import { type CoordinatorStateConfig, defaultStateConfig, validateStateConfig } from "./state-config.js";
import { decodeState, encodeState, encodeSteps } from "./state-snapshot.js";
import { type CoordinatorQueries, CoordinatorState } from "./state.js";

export type StateMachineNotice = { readonly kind: "applied"; readonly outcome: ApplyOutcome } | { readonly kind: "restored"; readonly appliedIndex: number };

export type StateMachineListener = (notice: StateMachineNotice) => void;

export interface CoordinatorStateMachineOptions {
  /** Must be identical on every member; defaults from `defaultStateConfig()`. */
  readonly config?: Partial<CoordinatorStateConfig>;
}

export class CoordinatorStateMachine implements StateMachine {
  readonly config: CoordinatorStateConfig;
  private state: CoordinatorState;
  private readonly listeners = new Set<StateMachineListener>();

  constructor(options: CoordinatorStateMachineOptions = {}) {
    this.config = validateStateConfig({ ...defaultStateConfig(), ...options.config });
    this.state = new CoordinatorState(this.config);
  }

  /** The current state, read-only. Replaced by `restore`, so do not keep it across calls. */
  get queries(): CoordinatorQueries {
    return this.state;
  }

  apply(command: Uint8Array, index: number): ApplyOutcome {
    if (!Number.isSafeInteger(index) || index <= this.state.appliedIndex) {
      throw new BrokenInvariantError(`apply at index ${index}, but index ${this.state.appliedIndex} is already applied`);
    }
    let decoded: { command: Command; stamp: CommandStamp } | InvalidArgumentError;
    try {
      decoded = decodeStampedCommand(command);
    } catch (err) {
      // A NewerFormatError is no InvalidArgumentError: the member stops (commands.ts).
      if (!(err instanceof InvalidArgumentError)) throw err;
      decoded = err;
    }
    const outcome =
      decoded instanceof InvalidArgumentError ? this.refuseUndecodable(decoded, index) : applyCommand(this.state, decoded.command, index, decoded.stamp.term);
    this.notify({ kind: "applied", outcome });
    return outcome;
  }

  snapshot(): Uint8Array {
    return encodeState(this.state);
  }

  snapshotSteps(): Generator<void, Uint8Array, void> {
    return encodeSteps(this.state);
  }

  exportSteps(): Generator<void, Uint8Array, void> {
    return encodeSteps(this.state, false);
  }

  restore(data: Uint8Array): void {
    this.state = decodeState(data, this.config);
    this.notify({ kind: "restored", appliedIndex: this.state.appliedIndex });
  }

  /** Calls `listener` after every apply and restore; returns the unsubscribe. */
  subscribe(listener: StateMachineListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** For tests and operators: throws BrokenInvariantError if the state is inconsistent. */
  checkInvariants(): void {
    this.state.checkInvariants();
  }

  /** Meetings waiting for a node with room, sorted. */
  unassignedMeetings(): string[] {
    return this.state.unassignedMeetings();
  }

  private refuseUndecodable(err: InvalidArgumentError, index: number): ApplyOutcome {
    // Nothing changed; the entry is still recorded for operators.
    const result = failureOf(err);
    this.state.appliedIndex = index;
    this.state.audit.append({ index, kind: "invalid", nowMs: this.state.clockMs, ok: false, code: result.code, summary: result.message, term: 0 });
    return { index, result, events: [] };
  }

  private notify(notice: StateMachineNotice): void {
    for (const listener of this.listeners) listener(notice);
  }
}
