/**
 * A coordinator state machine driven through its bytes, the way a
 * RaftDriver drives it: encoded commands at rising indexes, a clock the
 * test moves, invariants checked after every command. Shared by the
 * coordinator's state tests.
 */
import type { ApplyOutcome, CommandSuccess, CreateMeetingResult } from "../../src/coordinator/command-results.js";
import { type Command, type CommandType, encodeCommand } from "../../src/coordinator/commands.js";
import { CoordinatorStateMachine } from "../../src/coordinator/coordinator-state-machine.js";
import type { CommandFailure } from "../../src/coordinator/errors.js";
import { NEWEST_CLUSTER_VERSION, formatsAt } from "../../src/coordinator/formats.js";
import { validateLabels } from "../../src/coordinator/labels.js";
import { NO_LIMITS, type NodeLimits } from "../../src/coordinator/node-load.js";
import type { CoordinatorStateConfig } from "../../src/coordinator/state-config.js";

export type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export type Input = DistributiveOmit<Command, "nowMs"> & { nowMs?: number };
export type Success<T extends CommandType> = Extract<CommandSuccess, { type: T }>;

/** A state machine fed encoded commands at rising indexes and a clock the test moves. */
export class Harness {
  readonly sm: CoordinatorStateMachine;
  index = 0;
  nowMs = 1_000_000;

  constructor(config: Partial<CoordinatorStateConfig> = {}) {
    this.sm = new CoordinatorStateMachine({ config });
  }

  get q() {
    return this.sm.queries;
  }

  /** A group whose members all run this release raises the cluster version (formats.ts); what it gates needs it. */
  raiseClusterVersion(version = NEWEST_CLUSTER_VERSION): void {
    this.sm.apply(encodeCommand({ type: "setClusterVersion", nowMs: this.nowMs, version }, { version: formatsAt(version).command, term: 1 }), ++this.index);
  }

  /** Encoded in the command version of the cluster version applied, as a leader stamps it (coordinator-replica.ts). */
  run(input: Input): ApplyOutcome {
    const stamp = { version: formatsAt(this.q.clusterVersion).command, term: 1 };
    const outcome = this.sm.apply(encodeCommand({ nowMs: this.nowMs, ...input } as Command, stamp), ++this.index);
    this.sm.checkInvariants();
    return outcome;
  }

  ok<T extends CommandType>(input: Input & { type: T }): Success<T> {
    const { result } = this.run(input);
    if (!result.ok) throw new Error(`expected ${input.type} to succeed, got ${result.code}: ${result.message}`);
    return result as Success<T>;
  }

  fail(input: Input): CommandFailure {
    const { result } = this.run(input);
    if (result.ok) throw new Error(`expected ${input.type} to fail, got ${JSON.stringify(result)}`);
    return result;
  }

  register(
    nodeId: string,
    fields: { capacity?: number; region?: string; labels?: Record<string, string>; address?: string; limits?: Partial<NodeLimits> } = {},
  ): number {
    return this.ok({
      type: "register",
      nodeId,
      address: fields.address ?? `10.0.0.1:${9000 + this.index}`,
      capacity: fields.capacity ?? 10,
      region: fields.region ?? "",
      labels: validateLabels(fields.labels ?? {}),
      ...(fields.limits ? { limits: { ...NO_LIMITS, ...fields.limits } } : {}),
    }).generation;
  }

  create(
    meetingId: string,
    fields: { region?: string; labels?: Record<string, string>; excludedLabels?: Record<string, string>; preferredNodeId?: string } = {},
  ): CreateMeetingResult {
    return this.ok({
      type: "createMeeting",
      meetingId,
      region: fields.region ?? "",
      requiredLabels: validateLabels(fields.labels ?? {}),
      ...(fields.excludedLabels ? { excludedLabels: validateLabels(fields.excludedLabels) } : {}),
      ...(fields.preferredNodeId ? { preferredNodeId: fields.preferredNodeId } : {}),
    });
  }

  /** A checkpoint save from the meeting's current owner unless fields say otherwise. */
  save(meetingId: string, sequence: number, fields: { nodeId?: string; generation?: number; epoch?: number; state?: Uint8Array } = {}): Input {
    const route = this.q.getRoute(meetingId);
    const nodeId = fields.nodeId ?? (route.ok ? route.route.nodeId : "nobody");
    return {
      type: "saveCheckpoint",
      nodeId,
      generation: fields.generation ?? this.q.getNode(nodeId)?.generation ?? 1,
      meetingId,
      epoch: fields.epoch ?? (route.ok ? route.route.epoch : 1),
      sequence,
      state: fields.state ?? new TextEncoder().encode(`${meetingId}@${sequence}`),
    };
  }

  kill(nodeId: string): ApplyOutcome {
    return this.run({ type: "setLiveness", nodeId, generation: this.q.getNode(nodeId)!.generation, liveness: "DEAD" });
  }

  ownerOf(meetingId: string): string {
    const route = this.q.getRoute(meetingId);
    if (!route.ok) throw new Error(route.message);
    return route.route.nodeId;
  }
}
