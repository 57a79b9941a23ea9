/**
 * One simulated coordinator member: the real RaftDriver driving the real
 * coordinator state machine, with the real CoordinatorCore around it (the
 * leader's failure detector, watch streams and their counts, node agent
 * calls, placing waiting meetings), on its own process clock, over the
 * disk and Raft network twins of test/sim. A crash kills its clock and
 * loses unsynced writes; a restart rebuilds everything from its disk.
 * `serve` is what its gRPC services do with a call: run it here, or
 * forward it to the leader through the real leader hold.
 */
import * as grpc from "@grpc/grpc-js";
import { pino } from "pino";
import type { CoordinatorStateConfig } from "../../src/coordinator/state-config.js";
import { CoordinatorCore, type CoreTimings } from "../../src/coordinator/service/coordinator-core.js";
import { answerGetRoute } from "../../src/coordinator/service/coordinator-service.js";
import { CoordinatorStats } from "../../src/coordinator/service/coordinator-stats.js";
import type { DetectorBugs } from "../../src/coordinator/service/failure-detector.js";
import type { StreamReport } from "../../src/coordinator/service/node-streams.js";
import { RouteLog } from "../../src/coordinator/service/route-log.js";
import { watchRoutes } from "../../src/coordinator/service/route-watch.js";
import { WatchHub } from "../../src/coordinator/service/watch-hub.js";
import { toGrpcError } from "../../src/member/grpc-status.js";
import { refusedAsNotLeader } from "../../src/member/leader-forwarder.js";
import { type HoldCounts, LeaderHold, holdsForLeader } from "../../src/member/leader-hold.js";
import { type NodeId, NotLeaderError, type RaftConfig, StateRole } from "../../src/raft/index.js";
import { RaftDriver } from "../../src/raft-runtime/driver.js";
import { ProcessClock } from "../../src/time/process-clock.js";
import type { VirtualScheduler } from "../../src/time/virtual-scheduler.js";
import { type SimNetwork, SimTransport } from "../sim/network.js";
import type { SimDisk } from "../sim/sim-disk.js";
import { type ApplyObserver, ObservedMachine } from "./observed-machine.js";
import { type RpcNetwork, type ServerSink, rpcError } from "./rpc-network.js";

export type MemberMethod =
  | "Register"
  | "Heartbeat"
  | "SaveCheckpoint"
  | "Deregister"
  | "HandOver"
  | "Drain"
  | "CreateMeeting"
  | "GetRoute"
  | "DrainNode"
  | "UndrainNode"
  | "MoveMeeting"
  | "Rebalance"
  | "ListMeetings"
  | "SetClusterVersion";

const silent = pino({ level: "silent" });

export interface CoordinatorMemberSetup {
  readonly world: VirtualScheduler;
  readonly network: SimNetwork;
  readonly rpc: RpcNetwork;
  readonly config: (id: NodeId) => RaftConfig;
  readonly tickMs: number;
  readonly peers: () => ReadonlyMap<NodeId, string>;
  readonly member: (id: NodeId) => SimCoordinatorMember | undefined;
  readonly snapshotEvery: number;
  /** Each member's RaftDriverOptions.snapshotOffset (member.ts derives one the same way); none: 0. */
  readonly snapshotOffset?: (id: NodeId) => number;
  readonly catchUpEntries: number;
  readonly requestTimeoutMs: number;
  /** How often the members' leader hold came into play, summed. */
  readonly holdCounts: HoldCounts;
  readonly timings: CoreTimings;
  readonly stateConfig?: Partial<CoordinatorStateConfig>;
  readonly detectorBugs?: DetectorBugs;
  readonly observer: ApplyObserver;
  /** Where --trace lines go (already stamped with the time). */
  readonly trace?: (line: string) => void;
  readonly onFatal: (id: NodeId, err: unknown) => void;
}

export class SimCoordinatorMember {
  driver: RaftDriver | undefined;
  clock: ProcessClock | undefined;
  machine: ObservedMachine | undefined;
  core: CoordinatorCore | undefined;
  /** The leader hold of this incarnation, as each forwarder of a real member has one. */
  private hold: LeaderHold | undefined;
  private routes: RouteLog | undefined;
  private transport: SimTransport | undefined;
  incarnation = 0;
  rate = 1;
  skewMs = 0;
  pausedUntil = 0;
  /** The event-loop busy share its detector reads (local-health.ts): 1 while a fault saturates it. */
  busyShare = 0.3;

  constructor(
    readonly id: NodeId,
    readonly disk: SimDisk,
    private readonly setup: CoordinatorMemberSetup,
  ) {}

  get up(): boolean {
    return this.core !== undefined;
  }

  get isLeader(): boolean {
    return this.driver?.core.raft.role === StateRole.Leader;
  }

  async start(): Promise<void> {
    const setup = this.setup;
    if (this.clock) this.crash();
    const incarnation = ++this.incarnation;
    const clock = new ProcessClock(setup.world, { rate: this.rate, skewMs: this.skewMs });
    const machine = new ObservedMachine(this.id, setup.observer, setup.stateConfig ? { config: setup.stateConfig } : {});
    const watches = new WatchHub();
    const routes = new RouteLog(() => machine.queries);
    machine.subscribe((notice) => {
      watches.onNotice(notice);
      routes.onNotice(notice);
    });
    const transport = new SimTransport(this.id, setup.network, clock);
    this.clock = clock;
    this.transport = transport;
    const driver = await RaftDriver.start({
      config: setup.config(this.id),
      tickMs: setup.tickMs,
      storage: this.disk.open(clock),
      transport,
      stateMachine: machine,
      peers: setup.peers(),
      snapshotEvery: setup.snapshotEvery,
      snapshotOffset: setup.snapshotOffset?.(this.id) ?? 0,
      catchUpEntries: setup.catchUpEntries,
      requestTimeoutMs: setup.requestTimeoutMs,
      scheduler: clock,
      onFatal: (err) => setup.onFatal(this.id, err),
    });
    if (incarnation !== this.incarnation) return;
    this.driver = driver;
    this.hold = new LeaderHold(driver, clock, setup.holdCounts);
    this.machine = machine;
    this.routes = routes;
    this.core = new CoordinatorCore({
      raft: driver,
      machine,
      watches,
      timings: setup.timings,
      scheduler: clock,
      forwardStreamReport: (report, timeoutMs) => this.forwardReport(report, timeoutMs),
      stats: new CoordinatorStats(() => clock.now()),
      logger: setup.trace ? this.traceLogger() : silent,
      ...(setup.detectorBugs ? { detectorBugs: setup.detectorBugs } : {}),
      loopBusyShare: () => this.busyShare,
    });
  }

  /** With --trace, what the member logs at info and above (its detector's judgements) goes in the trace. */
  private traceLogger(): pino.Logger {
    return pino({ level: "info", base: null, timestamp: false }, {
      write: (line: string) => {
        const { msg, level: _level, ...rest } = JSON.parse(line) as Record<string, unknown>;
        this.setup.trace?.(`${this.id}: ${String(msg)} ${JSON.stringify(rest)}`);
      },
    });
  }

  crash(): void {
    this.incarnation++;
    this.clock?.kill();
    void this.transport?.close();
    this.disk.crash();
    this.driver = undefined;
    this.hold = undefined;
    this.clock = undefined;
    this.transport = undefined;
    this.machine = undefined;
    this.core = undefined;
    this.routes = undefined;
    this.pausedUntil = 0;
    this.setup.rpc.memberCrashed(this.id);
  }

  pause(ms: number): void {
    const clock = this.clock;
    if (!clock || clock.isPaused) return;
    clock.pause();
    this.pausedUntil = this.setup.world.now() + ms;
    this.setup.rpc.memberPaused(this.id, ms);
    this.setup.world.setTimeout(() => {
      if (this.clock === clock) this.pausedUntil = 0;
      clock.resume();
    }, ms);
  }

  /** Its event loop is saturated for `ms`: its detector stretches its timeouts meanwhile (it runs at full speed here). */
  saturate(ms: number): void {
    this.busyShare = 1;
    this.setup.world.setTimeout(() => (this.busyShare = 0.3), ms);
  }

  resume(): void {
    this.clock?.resume();
    this.pausedUntil = 0;
  }

  /** The running process, for the RPC network. */
  process(): { clock: ProcessClock; incarnation: number } | undefined {
    return this.clock && this.core ? { clock: this.clock, incarnation: this.incarnation } : undefined;
  }

  /**
   * A call as the member's gRPC handler runs it (handler.ts): here, or
   * forwarded to the leader by the real leader hold (held while no leader
   * is known, sent on to the next leader when one refuses it), within the
   * caller's `timeoutMs`, as a gRPC deadline reaches the member. A
   * forwarded call's answer names the leader this member knows
   * (`onLeaderHint`), as handler.ts sends it in the answer's metadata.
   */
  async serve(method: MemberMethod, req: Record<string, unknown>, forwarded = false, timeoutMs = Infinity, onLeaderHint?: (leaderId: string) => void): Promise<unknown> {
    const core = this.core;
    const driver = this.driver;
    const clock = this.clock;
    const hold = this.hold;
    if (!core || !driver || !clock || !hold) throw rpcError(grpc.status.UNAVAILABLE, `${this.id} is not running`);
    try {
      return await this.run(core, method, req);
    } catch (err) {
      if (!(err instanceof NotLeaderError) || forwarded) throw toGrpcError(err);
    }
    const deadline = clock.now() + timeoutMs;
    const answer = await hold.call({
      // The RPC network routes by member id; the driver knows the leader by its address "sim:<id>".
      send: (address) => {
        const lead = address.slice(address.indexOf(":") + 1);
        const remaining = deadline - clock.now();
        const leader = this.setup.member(lead);
        const run = () => (leader ? leader.serve(method, req, true, remaining) : Promise.reject(rpcError(grpc.status.UNAVAILABLE, `${lead} is not running`)));
        return this.setup.rpc.call(this.id, lead, run, Math.min(this.setup.requestTimeoutMs, remaining));
      },
      refusedAsNotLeader,
      noLeader: () => toGrpcError(new NotLeaderError(driver.core.raft.lead)),
      hold: holdsForLeader(method),
      callerDeadlineMs: deadline,
      cancelled: () => false,
    });
    const lead = driver.core.raft.lead;
    if (lead !== "") onLeaderHint?.(lead);
    return answer;
  }

  private async run(core: CoordinatorCore, method: MemberMethod, req: Record<string, unknown>): Promise<unknown> {
    switch (method) {
      case "Register":
        return core.agents.register(req);
      case "Heartbeat":
        return core.agents.heartbeat(req);
      case "SaveCheckpoint":
        return core.agents.saveCheckpoint(req);
      case "Deregister":
        return core.agents.deregister(req);
      case "HandOver":
        return core.agents.handOver(req);
      case "Drain":
        return core.agents.drain(req);
      case "CreateMeeting":
        // GetRoute(create=true), the service's own code.
        return answerGetRoute(core.replica, { meeting_id: req.meeting_id, create: true });
      case "GetRoute":
        // GetRoute(create=false): a linearizable read on this member, the service's own code.
        return answerGetRoute(core.replica, { meeting_id: req.meeting_id });
      case "DrainNode": {
        // As coordinator-service.ts proposes it: now (moving the meetings or not), or with a deadline.
        const nodeId = String(req.node_id);
        const deadlineMs = Number(req.deadline_ms ?? 0);
        if (deadlineMs > 0) await core.replica.propose({ type: "scheduleDrain", nodeId, generation: 0, afterMs: deadlineMs });
        else await core.replica.propose({ type: "drainNode", nodeId, migrate: req.migrate === true });
        return {};
      }
      case "UndrainNode":
        await core.replica.propose({ type: "undrain", nodeId: String(req.node_id) });
        return {};
      case "MoveMeeting":
        // As move-service.ts proposes them.
        return core.replica.propose({ type: "startMove", meetingId: String(req.meeting_id), toNodeId: String(req.to_node_id ?? ""), timeoutMs: Number(req.timeout_ms) });
      case "Rebalance":
        return core.replica.propose({ type: "rebalance", maxMoves: Number(req.max_moves), maxInFlight: Number(req.max_in_flight), thresholdPermille: Number(req.threshold_permille), timeoutMs: Number(req.timeout_ms) });
      case "ListMeetings": {
        const nodeId = String(req.node_id ?? "");
        const routes = await core.replica.read((q) => q.listMeetings(nodeId));
        return { meetings: routes.map((r) => ({ meeting_id: r.meetingId, node_id: r.nodeId, epoch: r.epoch })) };
      }
      case "SetClusterVersion":
        await core.replica.propose({ type: "setClusterVersion", version: Number(req.version) });
        return {};
    }
  }

  /** RouteFeed.WatchRoutes on this member, as its gRPC handler serves it. */
  watchRoutes(fromRevision: number, sink: ServerSink): () => void {
    const routes = this.routes;
    const clock = this.clock;
    const driver = this.driver;
    if (!routes || !clock || !driver) {
      sink.end(grpc.status.UNAVAILABLE, `${this.id} is not running`);
      return () => undefined;
    }
    return watchRoutes(routes, fromRevision, { ...sink, unsentBytes: () => 0 }, clock, () => driver.core.raft.lead !== "");
  }

  /** MemberAdmin.NodeConnection to the leader this member knows (a follower's stream counts). */
  private forwardReport(report: StreamReport, timeoutMs: number): Promise<unknown> {
    const lead = this.driver?.core.raft.lead ?? "";
    if (lead === "" || lead === this.id) return Promise.reject(new Error("no leader to report to"));
    return this.setup.rpc.call(
      this.id,
      lead,
      async () => {
        const leader = this.setup.member(lead);
        if (!leader?.core || !leader.isLeader) throw rpcError(grpc.status.UNAVAILABLE, `${lead} does not lead`);
        return leader.core.onStreamReport(report);
      },
      timeoutMs,
    );
  }
}
