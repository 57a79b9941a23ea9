/**
 * NodeAgent: what a Node.js meeting server embeds to take part in convene.
 *
 *   const agent = new NodeAgent({ coordinators, nodeId, address, capacity,
 *     onAssigned, onRevoked, getState });        // validates, throws AgentConfigError
 *   await agent.start();                         // resolves once registered
 *   ...
 *   await agent.stop({ deregister: true });      // graceful leave
 *   await agent.shutdown({ deadlineMs: 60_000 }); // or: a planned stop that loses nothing
 *
 * After `start`:
 * - heartbeats every heartbeat_interval_ms (from Register) with the number
 *   of held meetings and load = held / capacity;
 * - keeps WatchAssignments open (AssignmentWatch), turning its events into
 *   onAssigned / onRevoked (MeetingTable has the epoch rules);
 * - saves each held meeting's state every checkpointIntervalMs
 *   (CheckpointScheduler), and on `saveNow`;
 * - on HANDOVER (a planned move) asks the host's onHandover for the final
 *   state and sends it with HandOver (hand-over.ts); the meeting is then
 *   released with onRevoked (reason "handed-over");
 * - heartbeats carry the host's load figures (reportLoad) when it has any;
 * - when Heartbeat or WatchAssignments answers FAILED_PRECONDITION or
 *   NOT_FOUND (stale generation, declared dead, forgotten), calls onRevoked
 *   for every held meeting, registers again (a new generation) and
 *   resubscribes: the coordinator re-announces what the node owns now. A
 *   fenced SaveCheckpoint drops only that meeting (it moved), then a
 *   heartbeat is sent at once to learn whether the whole node is fenced.
 *
 * Reconcile after a resubscribe (the stream has no end-of-snapshot marker):
 * when a watch stream opens, every held meeting is marked unconfirmed; an
 * ASSIGNED at the same epoch confirms it. Meetings still unconfirmed when
 * the stream has stayed open for one heartbeat interval are checked with
 * ListMeetings for this node (a linearizable read through the leader):
 * those it still lists at the held epoch are kept, the rest are released
 * with onRevoked (reason "not-reannounced"). The stream alone cannot
 * decide: it starts from its member's applied state, and a member that is
 * behind re-announces a recent assignment only when it catches up;
 * releasing then, and taking the meeting back from that late ASSIGNED,
 * made the host restore an older checkpoint over acknowledged state
 * (found by the chaos suite). Without an answer nothing is released and
 * the check is repeated. If the stream breaks before that, the marks
 * carry over to the next stream and its own interval. A missed REVOKED
 * can only come from a move the node's generation survived (drain with
 * migrate); the next fenced save would catch it too, this only does it
 * sooner.
 *
 * Nothing the coordinator sends can throw into the host: answers are
 * checked (coordinator-responses.ts), bad ones are reported as 'error'
 * events (only when someone listens, so an unhandled 'error' never
 * crashes the process) and logged.
 */
import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import * as grpc from "@grpc/grpc-js";
import { pino } from "pino";
import { type AgentConfig, type AgentLogger, type AgentOptions, type LoadSample, type RawAgentOptions, checkLoadSample, validateAgentConfig } from "./agent-config.js";
import type { AgentEvents, RegisteredInfo, RevokeReason, ShutdownOptions, StopOptions } from "./agent-events.js";
import { AssignmentWatch } from "./assignment-watch.js";
import { CheckpointScheduler, type CheckpointTarget } from "./checkpoint-scheduler.js";
import type { AgentLink } from "./agent-link.js";
import { CoordinatorConnection } from "./coordinator-connection.js";
import { type Scheduler, type TimerHandle, realScheduler } from "../time/scheduler.js";
import {
  type Checkpoint,
  parseAssignmentEvent,
  parseNextPageToken,
  parseOwnedMeetings,
  parseRegisterResponse,
  parseSaveCheckpointResponse,
} from "./coordinator-responses.js";
import { AgentStoppedError, HostCallbackError, isFenced, isWaitForClusterVersion } from "./errors.js";
import { type HandOverHost, handOver } from "./hand-over.js";
import { HeartbeatLoop } from "./heartbeat-loop.js";
import { drainAndWait } from "./planned-stop.js";
import { clientSecurity } from "../security/client-security.js";
import { pageThrough } from "../wire/paging.js";
import { type HeldMeeting, MeetingTable } from "./meeting-table.js";

type Phase = "new" | "starting" | "running" | "stopping" | "stopped";

export class NodeAgent extends EventEmitter<AgentEvents> {
  readonly config: AgentConfig;
  private readonly log: AgentLogger;
  private readonly connection: CoordinatorConnection;
  private readonly table = new MeetingTable();
  private readonly scheduler: CheckpointScheduler;
  private readonly watch: AssignmentWatch;
  private phase: Phase = "new";
  private gen = 0;
  private hbIntervalMs = 0;
  private leaseMs = 0;
  private isDraining = false;
  private readonly heartbeats: HeartbeatLoop;
  private sweepTimer: TimerHandle | undefined;
  /** Time and timers: the machine's, or the simulation's virtual time. */
  private readonly clock: Scheduler;
  /** Bumped when a stream opens or breaks: a sweep started under an older one gives up. */
  private sweepRound = 0;
  private recovering: Promise<void> | undefined;
  private stopped: Promise<void> | undefined;

  /** Validates `options` first (AgentConfigError names the field); starts nothing. */
  /**
   * This process's registration token (Register's `incarnation`): a retried
   * or late duplicate Register returns the generation this process already
   * has instead of fencing it with a new one.
   */
  private readonly incarnation: string;

  constructor(
    options: AgentOptions,
    /** For tests and the simulation: the jitter, this process's token, how calls travel and what time it is. */
    internals: { readonly random?: () => number; readonly incarnation?: string; readonly link?: AgentLink; readonly scheduler?: Scheduler } = {},
  ) {
    super();
    this.incarnation = internals.incarnation ?? randomUUID();
    this.clock = internals.scheduler ?? realScheduler;
    this.config = validateAgentConfig(options as unknown as RawAgentOptions);
    this.log = this.config.logger ?? pino({ level: "silent" });
    this.connection = new CoordinatorConnection(this.config.coordinators, {
      rpcTimeoutMs: this.config.rpcTimeoutMs,
      retryBaseMs: this.config.retryBaseMs,
      retryMaxMs: this.config.retryMaxMs,
      random: internals.random,
      onRotate: (from, to, status) => this.rotated(from, to, status),
      onLeaderHint: (from, leader) => this.log.debug({ from, leader }, "following the leader hint: calls go to the leader directly"),
      security: clientSecurity(this.config.tls, this.config.token),
      ...(internals.link ? { link: internals.link } : {}),
      scheduler: this.clock,
    });
    this.scheduler = new CheckpointScheduler(this.checkpointTarget(), {
      intervalMs: this.config.checkpointIntervalMs,
      maxInFlight: this.config.maxSavesInFlight,
    }, this.clock);
    this.heartbeats = new HeartbeatLoop(this.connection, {
      nodeId: this.config.nodeId,
      capacity: this.config.capacity,
      rpcTimeoutMs: this.config.rpcTimeoutMs,
      mayBeat: () => !this.recovering && (this.phase === "running" || this.phase === "stopping"),
      generation: () => this.gen,
      activeMeetings: () => this.table.size,
      loadSample: () => this.loadSample(),
      answered: (leaseTtlMs, draining) => this.heartbeatAnswered(leaseTtlMs, draining),
      failed: (err, generation) => {
        if (isFenced(err)) this.recover(`Heartbeat: ${(err as Error).message}`, generation);
        else if (!(err instanceof AgentStoppedError)) this.reportError(err);
      },
    }, this.clock);
    this.watch = new AssignmentWatch(this.connection, this.config.nodeId, {
      opened: () => this.watchOpened(),
      event: (raw) => this.assignmentEvent(raw),
      broken: () => {
        this.clearSweep();
        // The member that held the stream reports the break to the leader,
        // which then declares this node dead after a short grace unless it
        // hears from it. A heartbeat now (not at the next interval, which
        // may fall after the grace) says this process is alive, even when
        // the new stream's member cannot reach the leader to say so.
        if (this.phase === "running") void this.heartbeats.beat();
      },
      fenced: (err, generation) => this.recover(`WatchAssignments: ${err.message}`, generation),
      failed: (err) => this.reportError(err),
    }, this.log, this.clock);
  }

  /** The generation of the current registration; 0 before the first. */
  get generation(): number {
    return this.gen;
  }
  get heartbeatIntervalMs(): number {
    return this.hbIntervalMs;
  }
  get leaseTtlMs(): number {
    return this.leaseMs;
  }
  /** Whether the last heartbeat said the node is draining (no new meetings). */
  get draining(): boolean {
    return this.isDraining;
  }
  /** The coordinator member calls go to now. */
  get coordinatorAddress(): string {
    return this.connection.address;
  }
  get running(): boolean {
    return this.phase === "running";
  }

  /** Held meetings: meeting id → epoch (a copy). */
  meetings(): Map<string, number> {
    return this.table.epochs();
  }

  /** Held meetings being handed over now (a planned move): they take no writes. */
  meetingsHandingOver(): string[] {
    return this.table.ids().filter((id) => this.table.get(id)?.handingOver);
  }

  /**
   * Registers (trying member after member until one answers), then starts
   * heartbeats, the assignment watch and the checkpoints. Resolves once
   * registered; rejects on a refusal (e.g. INVALID_ARGUMENT) or when
   * stopped first, leaving the agent stopped. Call once.
   */
  async start(): Promise<void> {
    if (this.phase !== "new") throw new Error(`start() may be called once; the agent is ${this.phase}`);
    this.phase = "starting";
    try {
      await this.register();
    } catch (err) {
      await this.stop();
      throw err;
    }
    if (this.phase !== "starting") throw new AgentStoppedError("the agent was stopped before it registered");
    this.phase = "running";
    this.log.info({ generation: this.gen, heartbeatIntervalMs: this.hbIntervalMs, leaseTtlMs: this.leaseMs }, "registered");
    this.emit("registered", this.registration());
    this.heartbeats.start(this.hbIntervalMs, this.leaseMs);
    this.scheduler.start();
    this.watch.open(this.gen);
  }

  /**
   * Stops timers, the watch and every channel. With `deregister`, first saves every held meeting
   * once (waiting at most max(2 s, 3 × rpcTimeoutMs)), calls Deregister and onRevoked for each
   * meeting. Without it, held meetings stay the node's until its lease
   * runs out and onRevoked is not called. Rejects (after stopping) when
   * Deregister failed. Idempotent.
   */
  stop(options: StopOptions = {}): Promise<void> {
    this.stopped ??= this.leave(options.deregister === true);
    return this.stopped;
  }

  /**
   * A planned stop: the node drains itself (no new meetings); meetings that
   * end within `deadlineMs` end here; at the deadline the coordinator asks
   * for the rest (onHandover) and moves each with its final state; then
   * the agent deregisters and stops. Resolves once stopped. If the drain
   * cannot be asked for (no coordinator answers) or the hand-overs do not
   * finish within `handOverWaitMs` after the deadline, it falls back to
   * stop({ deregister: true }), which moves what is left with a checkpoint
   * saved just before.
   */
  shutdown(options: ShutdownOptions): Promise<void> {
    if (this.stopped || this.phase !== "running") return this.stop();
    const deadlineMs = options.deadlineMs;
    if (!Number.isSafeInteger(deadlineMs) || deadlineMs < 0) return Promise.reject(new RangeError(`deadlineMs must be an integer of 0 or more, got ${deadlineMs}`));
    const waitMs = options.handOverWaitMs ?? 15_000;
    this.stopped = this.drainThenLeave(deadlineMs, waitMs);
    return this.stopped;
  }

  /** Saves one meeting's state now; see CheckpointScheduler.saveNow. */
  saveNow(meetingId: string): Promise<number | undefined> {
    if (this.phase !== "running") return Promise.reject(new AgentStoppedError(`the agent is ${this.phase}`));
    return this.scheduler.saveNow(meetingId);
  }

  private async drainThenLeave(deadlineMs: number, waitMs: number): Promise<void> {
    const host = {
      nodeId: this.config.nodeId,
      connection: this.connection,
      log: this.log,
      generation: () => this.gen,
      held: () => this.table.size,
      running: () => this.phase === "running",
      now: () => this.clock.now(),
    };
    if (await drainAndWait(host, deadlineMs, waitMs)) await this.leave(this.phase === "running");
  }

  private async leave(deregister: boolean): Promise<void> {
    const wasRunning = this.phase === "running";
    this.phase = "stopping";
    this.scheduler.stop();
    let failure: unknown;
    if (deregister && wasRunning && !this.recovering) {
      await Promise.race([this.scheduler.flush(), this.connection.sleep(Math.max(2000, 3 * this.config.rpcTimeoutMs))]); // bounded
      this.heartbeats.stop();
      try {
        await this.connection.unary("Deregister", { node_id: this.config.nodeId, generation: this.gen });
        this.log.info({ generation: this.gen, meetings: this.table.size }, "deregistered");
        this.watch.close();
        for (const m of this.table.clear()) this.announceRevoked(m, "deregistered");
      } catch (err) {
        failure = err;
      }
    }
    this.heartbeats.stop();
    this.clearSweep();
    this.watch.close();
    this.connection.close();
    this.table.clear();
    this.phase = "stopped";
    if (failure !== undefined) throw failure;
  }

  /** Register until a member answers with a valid registration; refusals are thrown. */
  private async register(): Promise<void> {
    const request = {
      node_id: this.config.nodeId,
      address: this.config.address,
      capacity: this.config.capacity,
      region: this.config.region,
      labels: this.config.labels,
      incarnation: this.incarnation,
      limits: {
        cpu: this.config.limits.cpu,
        net_in_bytes_per_sec: this.config.limits.netInBytesPerSec,
        net_out_bytes_per_sec: this.config.limits.netOutBytesPerSec,
        participants: this.config.limits.participants,
      },
    };
    for (let round = 1; ; round++) {
      let raw: unknown;
      try {
        raw = await this.connection.unary("Register", request, { attempts: Infinity });
      } catch (err) {
        // Limits need a cluster version the group raises by itself once every
        // member runs a release that knows them (seconds after a fresh group
        // starts; the end of a rolling upgrade): wait for it, do not fail the start.
        if (!isWaitForClusterVersion(err)) throw err;
        if (round === 1 || round % 10 === 0) this.log.warn({ reason: (err as Error).message }, "registering with limits waits for the cluster version that honours them");
        await this.connection.sleep(this.connection.backoffMs(Math.min(round, 4)));
        continue;
      }
      try {
        const reg = parseRegisterResponse(raw, this.config.nodeId);
        if (reg.clamped) this.log.warn({ heartbeatIntervalMs: reg.heartbeatIntervalMs }, "heartbeat_interval_ms out of range; clamped");
        if (reg.generation <= this.gen) this.log.warn({ generation: reg.generation, previous: this.gen }, "Register returned a generation that did not grow");
        this.gen = reg.generation;
        this.hbIntervalMs = reg.heartbeatIntervalMs;
        this.leaseMs = reg.leaseTtlMs;
        this.isDraining = false;
        return;
      } catch (err) {
        this.reportError(err);
        this.connection.rotateFrom(this.connection.address);
        await this.connection.sleep(this.connection.backoffMs(round));
      }
    }
  }

  /**
   * Fenced by the coordinator while at `generation`: drop everything, then
   * register and resubscribe. Once at a time; a report about an older
   * generation (a late answer) is ignored.
   */
  private recover(reason: string, generation: number): void {
    if (this.phase !== "running" || this.recovering || generation !== this.gen) return;
    this.log.warn({ reason, generation }, "fenced by the coordinator; registering again");
    this.recovering = this.reregister(reason, generation).finally(() => {
      this.recovering = undefined;
    });
  }

  private async reregister(reason: string, previousGeneration: number): Promise<void> {
    this.watch.close();
    this.clearSweep();
    for (const m of this.table.clear()) this.announceRevoked(m, "fenced");
    for (;;) {
      try {
        await this.register();
        break;
      } catch (err) {
        if (err instanceof AgentStoppedError || this.phase !== "running") return;
        this.reportError(err);
        try {
          await this.connection.sleep(this.config.retryMaxMs);
        } catch {
          return;
        }
      }
    }
    if (this.phase !== "running") return;
    this.log.info({ generation: this.gen, previousGeneration }, "registered again");
    this.heartbeats.start(this.hbIntervalMs, this.leaseMs);
    this.emit("reregistered", { ...this.registration(), previousGeneration, reason });
    this.watch.open(this.gen);
  }

  private heartbeatAnswered(leaseTtlMs: number, draining: boolean): void {
    this.leaseMs = leaseTtlMs;
    if (draining !== this.isDraining) this.log.info({ draining }, "draining changed");
    this.isDraining = draining;
    this.emit("heartbeat", { leaseTtlMs, draining });
  }

  /** A call timed out on the member the watch stream is on: that member may be frozen, so move the stream too. */
  private rotated(from: string, to: string, status: grpc.status): void {
    this.log.debug({ from, to, status: grpc.status[status] }, "moving to another coordinator member");
    if (status === grpc.status.DEADLINE_EXCEEDED && this.watch.address === from && this.phase === "running") this.watch.restart();
  }

  private watchOpened(): void {
    this.table.markAllUnconfirmed();
    this.clearSweep();
    if (this.table.size === 0) return;
    this.scheduleSweep(this.sweepRound);
  }

  private scheduleSweep(round: number): void {
    this.sweepTimer = this.clock.setTimeout(() => {
      this.sweepTimer = undefined;
      void this.sweepUnannounced(round);
    }, this.hbIntervalMs);
    this.sweepTimer.unref?.();
  }

  /** Releases the meetings neither the stream nor a linearizable ListMeetings says this node still owns. */
  private async sweepUnannounced(round: number): Promise<void> {
    const current = () => round === this.sweepRound && this.phase === "running";
    if (!current() || !this.table.hasUnconfirmed()) return;
    const nodeId = this.config.nodeId;
    let owned: Map<string, number>;
    try {
      // Page by page: a meeting held throughout is on exactly one page.
      const pages = await pageThrough(async (pageToken) => {
        const raw = await this.connection.unary("ListMeetings", { node_id: nodeId, page_token: pageToken });
        return { items: [...parseOwnedMeetings(raw, nodeId)], nextPageToken: parseNextPageToken(raw, "ListMeetingsResponse") };
      });
      owned = new Map(pages);
    } catch (err) {
      if (err instanceof AgentStoppedError || !current()) return;
      this.log.debug({ err }, "could not check unannounced meetings; keeping them and asking again");
      this.scheduleSweep(round);
      return;
    }
    if (!current()) return;
    for (const m of this.table.sweepUnconfirmed(owned)) this.announceRevoked(m, "not-reannounced");
  }

  private clearSweep(): void {
    this.clock.clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    this.sweepRound++;
  }

  private assignmentEvent(raw: unknown): void {
    let event;
    try {
      event = parseAssignmentEvent(raw);
    } catch (err) {
      this.reportError(err);
      return;
    }
    const outcome = this.table.apply(event);
    switch (outcome.kind) {
      case "assigned":
        this.announceAssigned(outcome.meeting, outcome.checkpoint, false);
        return;
      case "reassigned":
        this.announceRevoked(outcome.previous, "reassigned");
        this.announceAssigned(outcome.meeting, outcome.checkpoint, true);
        return;
      case "revoked":
        this.announceRevoked(outcome.meeting, "revoked");
        return;
      case "handover":
        this.log.info({ meetingId: outcome.meeting.meetingId, epoch: outcome.meeting.epoch }, "handing the meeting over");
        this.emit("handover", { meetingId: outcome.meeting.meetingId, epoch: outcome.meeting.epoch });
        void handOver(this.handOverHost(), outcome.meeting);
        return;
      case "unchanged":
        this.log.debug({ meetingId: event.meetingId, reason: outcome.reason }, "assignment event changes nothing");
        return;
      default:
        throw new Error(`invariant: unhandled outcome ${JSON.stringify(outcome satisfies never)}`);
    }
  }

  private announceAssigned(meeting: HeldMeeting, checkpoint: Checkpoint | undefined, reassigned: boolean): void {
    const { meetingId, epoch } = meeting;
    this.log.info({ meetingId, epoch, checkpointSequence: checkpoint?.sequence }, "meeting assigned");
    this.invokeHost(`onAssigned(${JSON.stringify(meetingId)})`, () => this.config.onAssigned(meetingId, epoch, checkpoint));
    this.emit("assigned", { meetingId, epoch, checkpoint, reassigned });
  }

  private announceRevoked(meeting: HeldMeeting, reason: RevokeReason): void {
    const { meetingId, epoch } = meeting;
    this.log.info({ meetingId, epoch, reason }, "meeting revoked");
    this.invokeHost(`onRevoked(${JSON.stringify(meetingId)})`, () => this.config.onRevoked(meetingId));
    this.emit("revoked", { meetingId, epoch, reason });
  }

  private checkpointTarget(): CheckpointTarget {
    return {
      table: this.table,
      getState: (meetingId) => this.config.getState(meetingId),
      save: async (meeting, sequence, state) =>
        parseSaveCheckpointResponse(
          await this.connection.unary("SaveCheckpoint", {
            node_id: this.config.nodeId,
            generation: this.gen,
            meeting_id: meeting.meetingId,
            epoch: meeting.epoch,
            sequence,
            state,
          }),
        ),
      rejected: (meeting, err) => {
        if (!this.table.release(meeting)) return;
        this.log.warn({ meetingId: meeting.meetingId, epoch: meeting.epoch, err: err.message }, "checkpoint refused: the meeting is no longer ours");
        this.announceRevoked(meeting, "moved");
        // The refusal may be about the whole node (stale generation, declared dead): a heartbeat now tells.
        void this.heartbeats.beat();
      },
      saved: (meeting, sequence, bytes) => this.emit("checkpoint", { meetingId: meeting.meetingId, epoch: meeting.epoch, sequence, bytes }),
      failed: (_meetingId, err) => this.reportError(err),
    };
  }

  private handOverHost(): HandOverHost {
    return {
      nodeId: this.config.nodeId,
      table: this.table,
      scheduler: this.scheduler,
      connection: this.connection,
      generation: () => this.gen,
      running: () => this.phase === "running" && !this.recovering,
      finalState: async (meetingId, epoch) => (this.config.onHandover ? this.config.onHandover(meetingId, epoch) : this.config.getState(meetingId)),
      handedOver: (meeting, answer) => {
        this.log.info({ meetingId: meeting.meetingId, toNodeId: answer.toNodeId, epoch: answer.epoch, sequence: answer.sequence }, "meeting handed over");
        this.emit("handedOver", { meetingId: meeting.meetingId, toNodeId: answer.toNodeId, epoch: answer.epoch, sequence: answer.sequence });
        // Given back to this node (no other could take it): the stream's ASSIGNED at the new epoch restarts it here.
        if (answer.toNodeId !== this.config.nodeId && this.table.release(meeting)) this.announceRevoked(meeting, "handed-over");
      },
      fenced: (meeting, err) => {
        if (!this.table.release(meeting)) return;
        this.log.warn({ meetingId: meeting.meetingId, err: err.message }, "hand-over refused: the meeting moved already (deadline passed) or ended");
        this.announceRevoked(meeting, "moved");
        void this.heartbeats.beat();
      },
      failed: (_meeting, err) => this.reportError(err),
    };
  }

  /** The host's load figures, checked; a throw or a bad value sends none (and is reported). */
  private loadSample(): Required<LoadSample> | undefined {
    if (!this.config.reportLoad) return undefined;
    try {
      return checkLoadSample(this.config.reportLoad(), "reportLoad()");
    } catch (err) {
      this.reportError(new HostCallbackError("reportLoad() failed; this heartbeat carries no load figures", { cause: err }));
      return undefined;
    }
  }

  private registration(): RegisteredInfo {
    return { generation: this.gen, heartbeatIntervalMs: this.hbIntervalMs, leaseTtlMs: this.leaseMs };
  }

  /** Calls a host callback; a throw or a rejection becomes an 'error' event, never an exception here. */
  private invokeHost(what: string, fn: () => unknown): void {
    try {
      const result = fn();
      if (result instanceof Promise) result.catch((err: unknown) => this.reportError(new HostCallbackError(`${what} rejected`, { cause: err })));
    } catch (err) {
      this.reportError(new HostCallbackError(`${what} threw`, { cause: err }));
    }
  }

  /** Logs, and emits 'error' only when someone listens (an unheard 'error' would throw). */
  private reportError(err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    this.log.warn({ err: error }, error.message);
    if (this.listenerCount("error") > 0) {
      try {
        this.emit("error", error);
      } catch (listenerErr) {
        this.log.error({ err: listenerErr }, "an 'error' listener threw");
      }
    }
  }
}
