/**
 * The coordinator's contract (API.md), checked while the simulation runs:
 * from every member's applies (ObservedMachine) and from what meeting
 * servers hear and are acknowledged. Each check is independent of the code
 * it checks: it keeps its own record of who was given which meeting epoch,
 * which saves were acknowledged, and when each server was heard.
 *
 *  - one owner per meeting epoch: an epoch, once given to a node
 *    generation, is never given to another (on any member, ever), and a
 *    server only holds an epoch given to its own generation;
 *  - epochs only grow on every member; a meeting is only given to a node
 *    that is ALIVE, not draining, below its declared CPU limit and within
 *    its capacity;
 *  - a save is accepted only from the node generation the epoch was given
 *    to, at the meeting's newest epoch (a zombie's write never is);
 *  - stored sequences never go back; an acknowledged save is in every
 *    later handoff's checkpoint (the new owner gets the last acknowledged
 *    checkpoint, or a later one its predecessor saved), and in the end;
 *  - a planned move loses nothing: the hand-over stores exactly the
 *    host's last write (taken after it stopped writing), and the new owner
 *    is assigned the meeting with that checkpoint; a meeting only goes back
 *    to the node handing it over when no other node can take it;
 *  - a node generation that heartbeats on time (every answer within the
 *    interval and a little, so its beats reached the leader through a
 *    quorum) and was neither stopped nor crashed is never declared dead.
 */
import type { ApplyOutcome } from "../../src/coordinator/command-results.js";
import type { Command } from "../../src/coordinator/commands.js";
import type { CoordinatorQueries } from "../../src/coordinator/state.js";
import type { ApplyObserver, BeforeApply } from "./observed-machine.js";
import type { Route } from "../../src/gateway/route-cache.js";
import type { ServerObserver } from "./meeting-server.js";
import type { GatewayObserver } from "./sim-gateway.js";

interface Binding {
  readonly nodeId: string;
  readonly generation: number;
  readonly index: number;
  readonly checkpointSequence: number;
  readonly checkpointState: string | undefined;
}

export interface LivenessWitness {
  /** Whether the process of this node generation has been running, neither crashed nor stopped, for the last `ms`. */
  runningThroughout(nodeId: string, generation: number, ms: number): boolean;
  now(): number;
}

const decoder = new TextDecoder();

export class SystemChecker implements ApplyObserver, ServerObserver, GatewayObserver {
  readonly violations: string[] = [];
  private readonly bindings = new Map<string, Binding>();
  /** Meeting → the epochs given, in log order. */
  private readonly epochsOf = new Map<string, { epoch: number; index: number }[]>();
  /** `${meeting}/${sequence}/${state}` → the index its save was first applied at. */
  private readonly saveIndex = new Map<string, number>();
  /** Meeting → acknowledged saves. */
  private readonly acked = new Map<string, { sequence: number; state: string; index: number }[]>();
  /** `${node}/${generation}` → times its heartbeats were answered. */
  private readonly beats = new Map<string, number[]>();
  private readonly judgedDead = new Set<number>();
  /** `${gateway}#${incarnation}/${meeting}` → the newest epoch that gateway process stored. */
  private readonly gatewayEpochs = new Map<string, number>();
  gatewayRoutes = 0;
  applies = 0;
  deaths = 0;
  handoffs = 0;
  /** Planned moves completed with the owner's final state. */
  plannedMoves = 0;
  private readonly plannedSeen = new Set<string>();
  /** `${meeting}#${epoch}` → the host's last write when it handed the meeting over. */
  private readonly finals = new Map<string, string>();
  savesAcked = 0;
  /** Answers to servers' calls that named the leader (the agents then call it directly). */
  leaderHints = 0;

  constructor(
    private readonly witness: LivenessWitness,
    private readonly timings: { heartbeatIntervalMs: number; leaseTtlMs: number },
    private readonly trace?: (line: string) => void,
  ) {}

  note(violation: string): void {
    this.trace?.(`VIOLATION ${violation}`);
    if (this.violations.length < 20) this.violations.push(violation);
  }

  // ---------------------------------------------------------------- applies

  applied(memberId: string, index: number, command: Command | undefined, outcome: ApplyOutcome, before: BeforeApply, after: CoordinatorQueries): void {
    this.applies++;
    // A hand-over with nowhere else to go gives the meeting back to its owner, which may be draining.
    const revokedFrom = new Map<string, string>();
    for (const e of outcome.events) if (e.type === "REVOKED") revokedFrom.set(e.meetingId, e.nodeId);
    const handOver = command !== undefined && (command.type === "completeMove" || command.type === "expireMove" || command.type === "drainDue");
    for (const e of outcome.events) {
      if (e.type !== "ASSIGNED") continue;
      const key = `${e.meetingId}#${e.epoch}`;
      const known = this.bindings.get(key);
      if (known && (known.nodeId !== e.nodeId || known.generation !== e.generation)) {
        this.note(`${memberId} index ${index}: meeting ${e.meetingId} epoch ${e.epoch} given to ${e.nodeId} generation ${e.generation}, but it was given to ${known.nodeId} generation ${known.generation} at index ${known.index}`);
      }
      const previous = before.epochs.get(e.meetingId) ?? 0;
      if (e.epoch <= previous && !(known && known.index === index)) {
        this.note(`${memberId} index ${index}: meeting ${e.meetingId} assigned at epoch ${e.epoch}, not above its epoch ${previous}`);
      }
      const node = after.getNode(e.nodeId);
      const backToOwner = handOver && revokedFrom.get(e.meetingId) === e.nodeId && node?.liveness !== "DEAD";
      if (!backToOwner && (!node || node.liveness !== "ALIVE" || node.draining)) {
        this.note(`${memberId} index ${index}: meeting ${e.meetingId} epoch ${e.epoch} placed on ${e.nodeId}, which is ${node ? node.state : "unknown"}`);
      }
      if (node && !backToOwner && node.limits.cpuPermille > 0 && node.load.cpuPermille >= node.limits.cpuPermille) {
        this.note(`${memberId} index ${index}: meeting ${e.meetingId} epoch ${e.epoch} placed on ${e.nodeId} at its declared CPU limit (${node.load.cpuPermille}‰ of ${node.limits.cpuPermille}‰)`);
      }
      if (node && node.meetings > node.capacity) {
        this.note(`${memberId} index ${index}: ${e.nodeId} holds ${node.meetings} meetings, over its capacity of ${node.capacity}`);
      }
      if (!known) {
        const checkpoint = e.checkpoint;
        const binding: Binding = {
          nodeId: e.nodeId,
          generation: e.generation,
          index,
          checkpointSequence: checkpoint?.sequence ?? 0,
          checkpointState: checkpoint ? decoder.decode(checkpoint.state) : undefined,
        };
        this.bindings.set(key, binding);
        const list = this.epochsOf.get(e.meetingId) ?? [];
        list.push({ epoch: e.epoch, index });
        this.epochsOf.set(e.meetingId, list);
        if (e.epoch > 1) this.handoffs++;
        for (const a of this.acked.get(e.meetingId) ?? []) this.checkHandoff(e.meetingId, e.epoch, binding, a);
      }
    }
    // Every meeting a node owns is an epoch given to its current generation.
    if (command?.type === "register" && outcome.result.ok) {
      const node = after.getNode(command.nodeId);
      for (const a of after.meetingsOf(command.nodeId)) {
        const b = this.bindings.get(`${a.meetingId}#${a.epoch}`);
        if (node && b && b.generation !== node.generation) {
          this.note(`${memberId} index ${index}: ${command.nodeId} registered as generation ${node.generation} but holds ${a.meetingId} at epoch ${a.epoch}, given to generation ${b.generation}`);
        }
      }
    }
    for (const [meetingId, sequence] of before.sequences) {
      const now = after.getCheckpoint(meetingId);
      if (now && now.sequence < sequence) this.note(`${memberId} index ${index}: ${meetingId}'s stored sequence went back from ${sequence} to ${now.sequence}`);
    }
    if (command?.type === "completeMove" && outcome.result.ok) this.checkCompletedMove(memberId, index, command, outcome);
    if (command?.type === "saveCheckpoint" && outcome.result.ok && outcome.result.type === "saveCheckpoint" && outcome.result.stored) {
      this.checkAcceptedSave(memberId, index, command);
    }
    if (command?.type === "setLiveness" && command.liveness === "DEAD" && outcome.result.ok && outcome.result.type === "setLiveness" && outcome.result.changed) {
      this.checkDeath(index, command.nodeId, command.generation);
    }
  }

  private checkCompletedMove(memberId: string, index: number, c: Extract<Command, { type: "completeMove" }>, outcome: ApplyOutcome): void {
    const state = decoder.decode(c.state);
    const final = this.finals.get(`${c.meetingId}#${c.epoch}`);
    if (final !== state) {
      this.note(`${memberId} index ${index}: ${c.meetingId} epoch ${c.epoch} handed over with ${JSON.stringify(state)}, not the host's last write ${final === undefined ? "(it handed over nothing)" : JSON.stringify(final)}`);
    }
    const assigned = outcome.events.find((e) => e.type === "ASSIGNED" && e.meetingId === c.meetingId);
    if (!assigned || assigned.type !== "ASSIGNED") {
      this.note(`${memberId} index ${index}: ${c.meetingId}'s hand-over was stored but the meeting was assigned to nobody`);
      return;
    }
    if (assigned.checkpoint?.sequence !== c.sequence || decoder.decode(assigned.checkpoint.state) !== state) {
      this.note(`${memberId} index ${index}: ${c.meetingId} moved to ${assigned.nodeId} epoch ${assigned.epoch} with checkpoint ${assigned.checkpoint?.sequence ?? "none"}, not the final ${c.sequence}`);
    }
    // Every member applies it: counted once.
    const key = `${c.meetingId}#${assigned.epoch}`;
    if (!this.plannedSeen.has(key)) {
      this.plannedSeen.add(key);
      this.plannedMoves++;
    }
  }

  private checkAcceptedSave(memberId: string, index: number, c: Extract<Command, { type: "saveCheckpoint" }>): void {
    const state = decoder.decode(c.state);
    const key = `${c.meetingId}/${c.sequence}/${state}`;
    if (!this.saveIndex.has(key)) this.saveIndex.set(key, index);
    const b = this.bindings.get(`${c.meetingId}#${c.epoch}`);
    if (!b || b.nodeId !== c.nodeId || b.generation !== c.generation) {
      this.note(`${memberId} index ${index}: accepted ${c.meetingId} sequence ${c.sequence} from ${c.nodeId} generation ${c.generation} at epoch ${c.epoch}, which was given to ${b ? `${b.nodeId} generation ${b.generation}` : "nobody"}`);
      return;
    }
    const newest = (this.epochsOf.get(c.meetingId) ?? []).filter((x) => x.index < index).reduce((m, x) => Math.max(m, x.epoch), 0);
    if (newest !== c.epoch) this.note(`${memberId} index ${index}: accepted ${c.meetingId} sequence ${c.sequence} at epoch ${c.epoch}, but the meeting was at epoch ${newest} (a zombie's write)`);
  }

  private checkDeath(index: number, nodeId: string, generation: number): void {
    if (this.judgedDead.has(index)) return;
    this.judgedDead.add(index);
    this.deaths++;
    const { heartbeatIntervalMs, leaseTtlMs } = this.timings;
    const now = this.witness.now();
    if (!this.witness.runningThroughout(nodeId, generation, leaseTtlMs)) return;
    const beats = (this.beats.get(`${nodeId}/${generation}`) ?? []).filter((t) => t >= now - leaseTtlMs);
    if (beats.length === 0) return;
    // On time: no gap over the interval and a little between answers, nor since the last one.
    const slack = heartbeatIntervalMs + 60;
    let last = now - leaseTtlMs;
    for (const t of [...beats, now]) {
      if (t - last > slack) return;
      last = t;
    }
    this.note(`index ${index}: ${nodeId} generation ${generation} declared dead while it ran and heartbeats were answered on time (${beats.length} in the last ${leaseTtlMs} ms, the last ${now - beats[beats.length - 1]!} ms ago)`);
  }

  /** An acknowledged save committed before a handoff must be in the checkpoint the handoff carries. */
  private checkHandoff(meetingId: string, epoch: number, b: Binding, a: { sequence: number; state: string; index: number }): void {
    if (a.index >= b.index) return;
    if (b.checkpointSequence < a.sequence) {
      this.note(`${meetingId} epoch ${epoch} handed to ${b.nodeId} with checkpoint sequence ${b.checkpointSequence}, below the acknowledged ${a.sequence}`);
    } else if (b.checkpointSequence === a.sequence && b.checkpointState !== a.state) {
      this.note(`${meetingId} epoch ${epoch} handed to ${b.nodeId} with sequence ${a.sequence} but other bytes than acknowledged`);
    }
  }

  // ---------------------------------------------------------------- servers

  leaderHinted(): void {
    this.leaderHints++;
  }

  heartbeatAcked(nodeId: string, generation: number): void {
    const key = `${nodeId}/${generation}`;
    const list = this.beats.get(key) ?? [];
    list.push(this.witness.now());
    if (list.length > 64) list.splice(0, list.length - 64);
    this.beats.set(key, list);
  }

  holds(nodeId: string, generation: number, meetingId: string, epoch: number, checkpoint: { sequence: number; state: string } | undefined): void {
    const b = this.bindings.get(`${meetingId}#${epoch}`);
    if (!b) {
      this.note(`${nodeId} generation ${generation} holds ${meetingId} epoch ${epoch}, which no member gave anyone`);
      return;
    }
    if (b.nodeId !== nodeId || b.generation !== generation) {
      this.note(`${nodeId} generation ${generation} holds ${meetingId} epoch ${epoch}, given to ${b.nodeId} generation ${b.generation}`);
    }
    // The checkpoint it was given with, or (re-announced by a member that is behind, after it let the
    // meeting go) one it saved itself in this tenure.
    const own = checkpoint?.state.startsWith(`${meetingId}/${nodeId}.${generation}@${epoch}#`) === true && checkpoint.sequence > b.checkpointSequence;
    if (!own && ((checkpoint?.sequence ?? 0) !== b.checkpointSequence || checkpoint?.state !== b.checkpointState)) {
      this.note(`${nodeId} received ${meetingId} epoch ${epoch} with checkpoint ${checkpoint?.sequence ?? "none"}, not the ${b.checkpointSequence} it was given with`);
    }
  }

  handedOver(_nodeId: string, _generation: number, meetingId: string, epoch: number, state: string): void {
    const key = `${meetingId}#${epoch}`;
    const known = this.finals.get(key);
    if (known !== undefined && known !== state) this.note(`${meetingId} epoch ${epoch} was handed over twice with different final states`);
    this.finals.set(key, state);
  }

  saveAcked(nodeId: string, generation: number, meetingId: string, epoch: number, sequence: number, state: string): void {
    this.savesAcked++;
    const index = this.saveIndex.get(`${meetingId}/${sequence}/${state}`);
    if (index === undefined) {
      this.note(`${nodeId} generation ${generation} was acknowledged ${meetingId} sequence ${sequence} at epoch ${epoch}, which no member stored`);
      return;
    }
    const a = { sequence, state, index };
    const list = this.acked.get(meetingId) ?? [];
    list.push(a);
    this.acked.set(meetingId, list);
    for (const x of this.epochsOf.get(meetingId) ?? []) {
      const b = this.bindings.get(`${meetingId}#${x.epoch}`)!;
      this.checkHandoff(meetingId, x.epoch, b, a);
    }
  }

  // ---------------------------------------------------------------- gateways

  gatewayStored(gatewayId: string, incarnation: number, route: Route): void {
    this.gatewayRoutes++;
    const key = `${gatewayId}#${incarnation}/${route.meetingId}`;
    const newest = this.gatewayEpochs.get(key) ?? 0;
    if (route.epoch < newest) {
      this.note(`gateway ${gatewayId} routes ${route.meetingId} to epoch ${route.epoch} on ${route.nodeId} after its feed delivered epoch ${newest}`);
    }
    this.gatewayEpochs.set(key, Math.max(newest, route.epoch));
    const b = this.bindings.get(`${route.meetingId}#${route.epoch}`);
    if (!b || b.nodeId !== route.nodeId) {
      this.note(`gateway ${gatewayId} routes ${route.meetingId} epoch ${route.epoch} to ${route.nodeId}, but that epoch was given to ${b ? b.nodeId : "nobody"}`);
    }
  }

  /** At the end: the leader's state keeps every acknowledged save. */
  checkFinal(q: CoordinatorQueries): void {
    for (const [meetingId, list] of this.acked) {
      const top = list.reduce((m, a) => (a.sequence > m.sequence ? a : m), list[0]!);
      const stored = q.getCheckpoint(meetingId);
      if (!stored || stored.sequence < top.sequence) {
        this.note(`lost acknowledged checkpoint: ${meetingId} sequence ${top.sequence}, the leader stores ${stored?.sequence ?? "none"}`);
      }
    }
  }
}
