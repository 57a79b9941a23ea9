/**
 * A simulated meeting server: a process (its own clock: it crashes,
 * freezes and comes back) running a node agent that follows the protocol
 * of API.md the way src/node-agent does: register (with this process's
 * incarnation), heartbeat every interval, keep one WatchAssignments stream
 * open (on the next member when it breaks), hold what it is assigned by
 * the epoch rules of MeetingTable, save each held meeting's state with a
 * growing sequence (one save per meeting in flight), and register again
 * when fenced. What it hears and what is acknowledged goes to the checker.
 */
import * as grpc from "@grpc/grpc-js";
import type { SeededRandom } from "../../src/raft/index.js";
import { ProcessClock } from "../../src/time/process-clock.js";
import { type Scheduler, type TimerHandle, sleepOn } from "../../src/time/scheduler.js";
import type { VirtualScheduler } from "../../src/time/virtual-scheduler.js";
import type { MemberMethod, SimCoordinatorMember } from "./coordinator-member.js";
import { type RpcError, type RpcNetwork, isRpcError } from "./rpc-network.js";

export interface HeldMeeting {
  readonly epoch: number;
  lastSequence: number;
}

/** What the checker hears from meeting servers. */
export interface ServerObserver {
  heartbeatAcked(nodeId: string, generation: number): void;
  /** The server takes (meeting, epoch) with the checkpoint it was sent. */
  holds(nodeId: string, generation: number, meetingId: string, epoch: number, checkpoint: { sequence: number; state: string } | undefined): void;
  saveAcked(nodeId: string, generation: number, meetingId: string, epoch: number, sequence: number, state: string): void;
}

export interface ServerSetup {
  readonly world: VirtualScheduler;
  readonly rpc: RpcNetwork;
  readonly rng: SeededRandom;
  readonly memberIds: () => string[];
  readonly member: (id: string) => SimCoordinatorMember | undefined;
  readonly observer: ServerObserver;
  readonly checkpointEveryMs: number;
  readonly rpcTimeoutMs: number;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

function fenced(err: unknown): boolean {
  return isRpcError(err) && (err.code === grpc.status.FAILED_PRECONDITION || err.code === grpc.status.NOT_FOUND);
}

/** One process of a meeting server: dies with it (a restart is a new Agent). */
class Agent {
  generation = 0;
  heartbeatMs = 500;
  leaseMs = 1500;
  readonly held = new Map<string, HeldMeeting>();
  private readonly saving = new Set<string>();
  private cursor: number;
  private beating = false;
  private recovering = false;
  private heartbeatTimer: TimerHandle | undefined;
  private checkpointTimer: TimerHandle | undefined;
  private cancelWatch: (() => void) | undefined;
  private watchFailures = 0;
  /** The member the open stream is on. */
  private watchMember: string | undefined;

  constructor(
    private readonly server: SimMeetingServer,
    readonly clock: Scheduler,
    private readonly setup: ServerSetup,
    private readonly incarnation: string,
  ) {
    this.cursor = setup.rng.intBelow(setup.memberIds().length);
  }

  private get nodeId(): string {
    return this.server.id;
  }

  private get memberId(): string {
    const ids = this.setup.memberIds();
    return ids[this.cursor % ids.length]!;
  }

  private rotate(from: string): void {
    if (from === this.memberId) this.cursor++;
  }

  private call(method: MemberMethod, req: Record<string, unknown>, timeoutMs = this.setup.rpcTimeoutMs): Promise<Record<string, unknown>> {
    const to = this.memberId;
    const member = this.setup.member(to);
    return this.setup.rpc.call(this.server.processName, to, () => member!.serve(method, req) as Promise<Record<string, unknown>>, timeoutMs).catch((err: unknown) => {
      const e = err as RpcError;
      if (e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED || e.code === grpc.status.INTERNAL) this.rotate(to);
      // As NodeAgent does: a member that lets a call time out may be frozen, so the stream moves too.
      if (e.code === grpc.status.DEADLINE_EXCEEDED && this.watchMember === to && !this.recovering) this.openWatch();
      throw err;
    });
  }

  async start(): Promise<void> {
    await this.register();
    this.running();
  }

  private async register(): Promise<void> {
    for (let round = 0; ; round++) {
      try {
        const r = await this.call("Register", { node_id: this.nodeId, address: `${this.nodeId}:9000`, capacity: this.server.capacity, incarnation: this.incarnation });
        this.generation = Number(r.generation);
        this.heartbeatMs = Number(r.heartbeat_interval_ms);
        this.leaseMs = Number(r.lease_ttl_ms);
        return;
      } catch {
        await sleepOn(this.clock, 50 + this.setup.rng.intBelow(100 * Math.min(10, round + 1)));
      }
    }
  }

  private running(): void {
    this.clock.clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = this.clock.setInterval(() => void this.beat(), this.heartbeatMs);
    this.checkpointTimer ??= this.clock.setInterval(() => this.saveAll(), this.setup.checkpointEveryMs);
    this.openWatch();
  }

  /** Fenced at `generation`: drop everything, register again, watch again. */
  private recover(generation: number): void {
    if (this.recovering || generation !== this.generation) return;
    this.recovering = true;
    this.cancelWatch?.();
    this.cancelWatch = undefined;
    this.watchMember = undefined;
    this.held.clear();
    void this.register().then(() => {
      this.recovering = false;
      this.running();
    });
  }

  async beat(): Promise<void> {
    if (this.beating || this.recovering) return;
    this.beating = true;
    const generation = this.generation;
    try {
      const timeout = Math.min(this.setup.rpcTimeoutMs, Math.max(this.heartbeatMs, Math.floor(this.leaseMs / 3)));
      await this.call("Heartbeat", { node_id: this.nodeId, generation, active_meetings: this.held.size, load: 0 }, timeout);
      this.setup.observer.heartbeatAcked(this.nodeId, generation);
    } catch (err) {
      if (fenced(err)) this.recover(generation);
    } finally {
      this.beating = false;
    }
  }

  private openWatch(): void {
    this.cancelWatch?.();
    const generation = this.generation;
    const to = this.memberId;
    const member = this.setup.member(to);
    const openedAt = this.clock.now();
    this.watchMember = to;
    let done = false;
    this.cancelWatch = this.setup.rpc.openStream(
      this.server.processName,
      to,
      (sink) => member!.core!.agents.watch({ node_id: this.nodeId, generation }, sink),
      {
        data: (message) => {
          if (done || generation !== this.generation) return;
          this.watchFailures = 0;
          this.event(message);
        },
        end: (err) => {
          if (done) return;
          done = true;
          if (this.watchMember === to) this.watchMember = undefined;
          if (generation !== this.generation || this.recovering) return;
          if (fenced(err)) {
            this.recover(generation);
            return;
          }
          // A break: heartbeat now (the member reports the break to the leader), reopen elsewhere.
          void this.beat();
          this.rotate(to);
          if (this.clock.now() - openedAt >= 1000) this.watchFailures = 0;
          this.watchFailures++;
          const rounds = Math.floor((this.watchFailures - 1) / this.setup.memberIds().length);
          const delay = rounds === 0 ? 0 : 50 + this.setup.rng.intBelow(Math.min(1000, 100 * 2 ** rounds));
          this.clock.setTimeout(() => {
            if (generation === this.generation && !this.recovering) this.openWatch();
          }, delay);
        },
      },
    );
  }

  /** ASSIGNED and REVOKED by MeetingTable's rules. */
  private event(message: Record<string, unknown>): void {
    const meetingId = String(message.meeting_id);
    const epoch = Number(message.epoch);
    const current = this.held.get(meetingId);
    if (message.type === 1) {
      if (current && current.epoch >= epoch) return;
      const raw = message.checkpoint as Record<string, unknown> | undefined;
      const checkpoint = raw ? { sequence: Number(raw.sequence), state: decoder.decode(raw.state as Uint8Array) } : undefined;
      this.held.set(meetingId, { epoch, lastSequence: Math.max(checkpoint?.sequence ?? 0, current?.lastSequence ?? 0) });
      this.setup.observer.holds(this.nodeId, this.generation, meetingId, epoch, checkpoint);
    } else if (current && (epoch === 0 || epoch >= current.epoch)) {
      this.held.delete(meetingId);
    }
  }

  private saveAll(): void {
    if (this.recovering) return;
    for (const meetingId of this.held.keys()) {
      if (!this.saving.has(meetingId)) void this.save(meetingId);
    }
  }

  private async save(meetingId: string): Promise<void> {
    const meeting = this.held.get(meetingId);
    if (!meeting) return;
    this.saving.add(meetingId);
    const generation = this.generation;
    const sequence = ++meeting.lastSequence;
    const state = `${meetingId}/${sequence}/${this.nodeId}.${generation}@${meeting.epoch}`;
    try {
      const r = await this.call("SaveCheckpoint", {
        node_id: this.nodeId,
        generation,
        meeting_id: meetingId,
        epoch: meeting.epoch,
        sequence,
        state: encoder.encode(state),
      });
      this.setup.observer.saveAcked(this.nodeId, generation, meetingId, meeting.epoch, Number(r.sequence), state);
    } catch (err) {
      if (fenced(err) && this.held.get(meetingId) === meeting) {
        this.held.delete(meetingId);
        void this.beat();
      }
    } finally {
      this.saving.delete(meetingId);
    }
  }
}

export class SimMeetingServer {
  clock: ProcessClock | undefined;
  agent: Agent | undefined;
  /** Bumped on every start and crash: the RPC network drops what was meant for an older process. */
  incarnation = 0;
  frozenUntil = 0;
  /** Since when this server has run without a start, crash or freeze (virtual time). */
  quietSince = 0;

  constructor(
    readonly id: string,
    readonly capacity: number,
    private readonly setup: ServerSetup,
  ) {}

  /** Its name on the RPC network. */
  get processName(): string {
    return this.id;
  }

  get up(): boolean {
    return this.clock !== undefined;
  }

  get frozen(): boolean {
    return this.clock?.isPaused ?? false;
  }

  process(): { clock: ProcessClock; incarnation: number } | undefined {
    return this.clock ? { clock: this.clock, incarnation: this.incarnation } : undefined;
  }

  start(): void {
    if (this.clock) this.crash();
    this.incarnation++;
    const clock = new ProcessClock(this.setup.world, { rate: 0.98 + 0.04 * this.setup.rng.next() });
    this.clock = clock;
    this.quietSince = this.setup.world.now();
    const agent = new Agent(this, clock, this.setup, `${this.id}-${this.incarnation}`);
    this.agent = agent;
    clock.run(() => void agent.start());
  }

  crash(): void {
    this.incarnation++;
    this.clock?.kill();
    this.clock = undefined;
    this.agent = undefined;
    this.frozenUntil = 0;
    this.setup.rpc.clientCrashed(this.processName);
  }

  /** SIGSTOP for `ms`: it sends nothing, its streams stay open, and it wakes up a zombie if it was declared dead meanwhile. */
  freeze(ms: number): void {
    const clock = this.clock;
    if (!clock || clock.isPaused) return;
    clock.pause();
    this.frozenUntil = this.setup.world.now() + ms;
    this.quietSince = this.frozenUntil;
    this.setup.world.setTimeout(() => {
      if (this.clock === clock) this.frozenUntil = 0;
      clock.resume();
    }, ms);
  }

  thaw(): void {
    if (this.frozen) this.quietSince = this.setup.world.now();
    this.clock?.resume();
    this.frozenUntil = 0;
  }
}
