/**
 * The coordinator's view of its Raft member: typed proposals of coordinator
 * commands (stamped with this leader's clock, the only clock apply ever
 * sees) and linearizable queries of the replicated state.
 */
import type { RaftDriver } from "../../raft-runtime/driver.js";
import type { CommandSuccess } from "../command-results.js";
import type { ApplyOutcome } from "../command-results.js";
import { type Command, type CommandStamp, encodeCommand } from "../commands.js";
import { formatsAt } from "../formats.js";
import type { CoordinatorStateMachine } from "../coordinator-state-machine.js";
import { failureToError } from "../errors.js";
import type { CoordinatorQueries } from "../state.js";
import { type Scheduler, realScheduler } from "../../time/scheduler.js";

/** A command as the services build it: the leader stamps nowMs. */
export type Proposal = Command extends infer C ? (C extends Command ? Omit<C, "nowMs"> : never) : never;

export class CoordinatorReplica {
  constructor(
    readonly raft: RaftDriver,
    readonly machine: CoordinatorStateMachine,
    /** The leader's clock that stamps commands (virtual time in the simulation). */
    private readonly clock: Pick<Scheduler, "now"> = realScheduler,
  ) {}

  /**
   * Proposes a command on this member (which must lead: NotLeaderError
   * otherwise) and resolves with its result once applied; a refused command
   * rejects with its CoordinatorError (INVALID_ARGUMENT, NOT_FOUND, ...).
   */
  async propose<T extends CommandSuccess>(proposal: Proposal): Promise<T> {
    return (await this.proposeAt<T>(proposal)).result;
  }

  /** `propose`, with the log index the command applied at: the revision of the route changes it made. */
  async proposeAt<T extends CommandSuccess>(proposal: Proposal): Promise<{ readonly result: T; readonly index: number }> {
    const command = { ...proposal, nowMs: this.clock.now() } as Command;
    const outcome = (await this.raft.propose(encodeCommand(command, this.stampFor(command)))) as ApplyOutcome;
    if (!outcome.result.ok) throw failureToError(outcome.result);
    return { result: outcome.result as T, index: outcome.index };
  }

  /**
   * The command version of the cluster version applied here (formats.ts):
   * every member reads it. Raising the cluster version is itself written
   * in the version it raises to, which every member then understands.
   */
  private stampFor(command: Command): CommandStamp {
    const version = command.type === "setClusterVersion" ? command.version : this.machine.queries.clusterVersion;
    return { version: formatsAt(version).command, term: this.raft.term };
  }

  /** Runs `query` at a linearizable point (ReadIndex) on this member. */
  read<T>(query: (q: CoordinatorQueries) => T): Promise<T> {
    return this.raft.read(() => query(this.machine.queries));
  }

  /** The state as last applied here, without a ReadIndex round: for the leader's own bookkeeping only. */
  local(): CoordinatorQueries {
    return this.machine.queries;
  }
}
