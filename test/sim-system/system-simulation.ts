/**
 * The whole product in one process, on virtual time, driven by one seed:
 * three or five coordinator members (the real RaftDriver, state machine
 * and CoordinatorCore: failure detector, watch streams and their counts,
 * node agent calls, route watches), meeting servers running the real
 * NodeAgent, gateways running the real route cache and feed client, and an
 * operator creating meetings, moving them, rebalancing and draining nodes, over the disk, Raft and
 * RPC network twins. Members crash, restart and pause; the networks drop,
 * delay and partition (members from members, servers from members);
 * servers crash, restart under the same id at once, and freeze (waking up
 * as zombies). SystemChecker checks the contract at every apply and every
 * answer; then the faults stop and within a bound every meeting must be
 * routable to a live server that holds it and every live server ALIVE.
 */
import { ETCD_CATCH_UP_ENTRIES, spreadSnapshotOffset } from "../../src/raft-runtime/driver.js";
import * as grpc from "@grpc/grpc-js";
import { NEWEST_CLUSTER_VERSION } from "../../src/coordinator/formats.js";
import type { CoordinatorBugs } from "../../src/coordinator/planted-bugs.js";
import type { CoreTimings } from "../../src/coordinator/service/coordinator-core.js";
import type { DetectorBugs } from "../../src/coordinator/service/failure-detector.js";
import { type NodeId, SeededRandom, defaultConfig } from "../../src/raft/index.js";
import { MemoryDurableStorage } from "../../src/raft-runtime/memory-durable-storage.js";
import { VirtualScheduler, flushMicrotasks } from "../../src/time/virtual-scheduler.js";
import { NO_FAULTS, SimNetwork } from "../sim/network.js";
import { SimDisk } from "../sim/sim-disk.js";
import { type CoordinatorMemberSetup, type MemberMethod, SimCoordinatorMember } from "./coordinator-member.js";
import { SimMeetingServer } from "./meeting-server.js";
import { SimGateway } from "./sim-gateway.js";
import type { RouteCacheBugs } from "../../src/gateway/route-cache.js";
import { RpcNetwork, isRpcError } from "./rpc-network.js";
import { MemberReplacer } from "./member-replacement.js";
import { SystemChecker } from "./system-checker.js";
import { SystemFaults } from "./system-faults.js";

export interface SystemSimOptions {
  readonly seed: number;
  readonly members: number;
  /** Virtual ms of the faulty phase. */
  readonly faultyMs?: number;
  readonly detectorBugs?: DetectorBugs;
  readonly stateBugs?: CoordinatorBugs;
  readonly gatewayBugs?: RouteCacheBugs;
  readonly faults?: boolean;
  readonly trace?: (line: string) => void;
}

export interface SystemSimResult {
  readonly seed: number;
  readonly members: number;
  readonly virtualMs: number;
  readonly violations: readonly string[];
  readonly stats: Readonly<Record<string, number>>;
}

export const TIMINGS: CoreTimings = {
  heartbeatIntervalMs: 500,
  leaseTtlMs: 1500,
  disconnectGraceMs: 300,
  maxCheckpointBytes: 256 * 1024,
  moveTimeoutMs: 10_000,
  loadReportMs: 2_000,
};
const TICK_MS = 20;
const REQUEST_TIMEOUT_MS = 2000;
/** After the faults stop: every meeting routable and every live server ALIVE within this. */
export const LIVENESS_BOUND_MS = 30_000;
const OPERATOR_EVERY_MS = 100;
const WALL_CLOCK_MS = 1_700_000_000_000;

class StopAtViolation extends Error {}

export class SystemSimulation {
  readonly rng: SeededRandom;
  readonly world = new VirtualScheduler(0);
  readonly network: SimNetwork;
  readonly rpc: RpcNetwork;
  readonly members = new Map<NodeId, SimCoordinatorMember>();
  readonly servers = new Map<string, SimMeetingServer>();
  readonly gateways = new Map<string, SimGateway>();
  readonly checker: SystemChecker;
  readonly faults: SystemFaults;
  readonly replacer = new MemberReplacer(this);
  /** The members in the group's address list: the founders, then each replacement in its predecessor's place. */
  private readonly memberIds: NodeId[];
  private meetingSeq = 0;
  private readonly memberSetup: CoordinatorMemberSetup;
  readonly stats: Record<string, number> = { meetingsCreated: 0, drains: 0 };

  constructor(readonly options: SystemSimOptions) {
    this.rng = new SeededRandom(options.seed);
    this.network = new SimNetwork(this.world, this.rng.fork());
    this.rpc = new RpcNetwork(
      this.world,
      this.rng.fork(),
      (a, b) => this.network.connected(a, b),
      (id) => this.members.get(id)?.process() ?? this.servers.get(id)?.process() ?? this.gateways.get(id)?.process(),
      (id) => this.members.has(id),
    );
    this.checker = new SystemChecker(
      {
        now: () => this.world.now(),
        runningThroughout: (nodeId, generation, ms) => {
          const s = this.servers.get(nodeId);
          return s !== undefined && s.up && !s.frozen && s.generation === generation && this.world.now() - s.quietSince >= ms;
        },
      },
      TIMINGS,
      options.trace,
    );
    const ids = Array.from({ length: options.members }, (_, i) => `n${i + 1}`);
    this.memberIds = [...ids];
    const memberIds = (): NodeId[] => this.memberIds;
    this.memberSetup = {
      world: this.world,
      network: this.network,
      rpc: this.rpc,
      config: (id) => ({ ...defaultConfig(id, this.rng.fork()), electionTick: 20, heartbeatTick: 2 }),
      tickMs: TICK_MS,
      peers: () => new Map(memberIds().map((id) => [id, `sim:${id}`])),
      member: (id) => this.members.get(id),
      snapshotEvery: this.rng.chance(0.5) ? 20 + this.rng.intBelow(200) : 10_000,
      // From the seed, not drawn: other seeds' schedules stay as they were.
      catchUpEntries: [0, 5, 50, ETCD_CATCH_UP_ENTRIES][options.seed % 4]!,
      // Odd seeds spread the members' snapshots as members do (member.ts snapshotOffset).
      ...(options.seed % 2 === 1
        ? { snapshotOffset: (id: NodeId) => spreadSnapshotOffset(memberIds(), id, this.memberSetup.snapshotEvery) }
        : {}),
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      holdCounts: { held: 0, resent: 0 },
      timings: TIMINGS,
      ...(options.detectorBugs ? { detectorBugs: options.detectorBugs } : {}),
      ...(options.stateBugs ? { stateConfig: { bugs: options.stateBugs } } : {}),
      observer: this.checker,
      ...(options.trace ? { trace: (line: string) => this.trace(line) } : {}),
      onFatal: (id, err) => this.checker.note(`${id} stopped on a broken invariant: ${err instanceof Error ? err.message : String(err)}`),
    };
    for (const id of ids) this.addMember(id, MemoryDurableStorage.bootstrap(ids));
    const serverCount = 3 + this.rng.intBelow(4);
    for (let i = 1; i <= serverCount; i++) {
      const id = `s${i}`;
      this.servers.set(
        id,
        new SimMeetingServer(id, 3 + this.rng.intBelow(4), {
          world: this.world,
          rpc: this.rpc,
          rng: this.rng.fork(),
          memberIds,
          member: (mid) => this.members.get(mid),
          observer: this.checker,
          checkpointEveryMs: 200 + this.rng.intBelow(400),
          rpcTimeoutMs: REQUEST_TIMEOUT_MS,
          trace: (line) => this.trace(line),
        }),
      );
    }
    for (const id of ["g1", "g2"]) {
      this.gateways.set(
        id,
        new SimGateway(id, {
          world: this.world,
          rpc: this.rpc,
          rng: this.rng.fork(),
          memberIds,
          member: (mid) => this.members.get(mid),
          observer: this.checker,
          ...(options.gatewayBugs ? { cacheBugs: options.gatewayBugs } : {}),
        }),
      );
    }
    this.faults = new SystemFaults(this, options.faults !== false);
  }

  private addMember(id: NodeId, platter: MemoryDurableStorage): SimCoordinatorMember {
    const disk = new SimDisk(id, platter, this.rng.fork(), { persisted: () => undefined });
    const m = new SimCoordinatorMember(id, disk, this.memberSetup);
    m.skewMs = WALL_CLOCK_MS;
    if (this.options.faults !== false) {
      m.rate = 0.98 + 0.04 * this.rng.next();
      // Wall clocks about now, a few seconds apart (virtual time itself starts at 0).
      m.skewMs = WALL_CLOCK_MS + this.rng.intBelow(10_000) - 5_000;
    }
    this.members.set(id, m);
    return m;
  }

  /** A member's process and disk are lost for good: it leaves the simulation (the group still counts it until it is removed). */
  loseMember(id: NodeId): void {
    const lost = this.members.get(id)!;
    lost.crash();
    lost.disk.wipe();
    this.members.delete(id);
  }

  /**
   * After `id` was removed from the group: a new member (a new id, an empty
   * disk) takes its place in the address list and starts, waiting to be
   * added. Returns its id.
   */
  addReplacement(id: NodeId, count: number): NodeId {
    const fresh = `${id.split("r")[0]}r${count}`;
    this.memberIds.splice(this.memberIds.indexOf(id), 1, fresh);
    void this.addMember(fresh, new MemoryDurableStorage()).start();
    return fresh;
  }

  trace(line: string): void {
    this.options.trace?.(`${String(this.world.now()).padStart(7)} ${line}`);
  }

  /** Meetings the operator created so far (meeting-1 .. meeting-N). */
  meetingCount(): number {
    return this.meetingSeq;
  }

  leader(): SimCoordinatorMember | undefined {
    let best: SimCoordinatorMember | undefined;
    for (const m of this.members.values()) {
      if (m.up && m.isLeader && (!best || m.driver!.term > best.driver!.term)) best = m;
    }
    return best;
  }

  /** An operator's call to a random running member (which forwards to the leader). */
  operatorCall(method: MemberMethod, req: Record<string, unknown>): Promise<unknown> {
    const up = [...this.members.values()].filter((m) => m.up);
    if (up.length === 0) return Promise.reject(new Error("no member is up"));
    const m = this.rng.pick(up);
    return m.serve(method, req);
  }

  private async runUntil(untilMs: number): Promise<void> {
    await flushMicrotasks();
    while (this.checker.violations.length === 0 && this.world.runNext(untilMs)) await flushMicrotasks();
    if (this.checker.violations.length > 0) throw new StopAtViolation();
    await this.world.advanceTo(untilMs);
  }

  /** The operator: raises the cluster version (as the version monitor does), then starts the servers and creates meetings. */
  private operatorTick(): void {
    // Gateway traffic: now and then a meeting looked up with GetRoute (a miss, or a stale route).
    for (const g of this.gateways.values()) {
      if (g.up && this.meetingSeq > 0 && this.rng.chance(0.3)) g.lookup(`meeting-${1 + this.rng.intBelow(this.meetingSeq)}`);
    }
    const capacity = [...this.servers.values()].reduce((n, s) => n + s.capacity, 0);
    if (this.meetingSeq < Math.floor(capacity * 0.5) && this.rng.chance(0.1)) {
      const meetingId = `meeting-${++this.meetingSeq}`;
      this.stats.meetingsCreated++;
      // Retried until placed: a create that failed leaves nothing, one that timed out may have happened.
      const create = (attempt: number): void => {
        this.operatorCall("CreateMeeting", { meeting_id: meetingId }).catch((err: unknown) => {
          if (attempt < 50 && !(isRpcError(err) && err.code === grpc.status.RESOURCE_EXHAUSTED)) this.world.setTimeout(() => create(attempt + 1), 200);
        });
      };
      create(0);
    }
  }

  async run(): Promise<SystemSimResult> {
    const faultyMs = this.options.faultyMs ?? 20_000;
    for (const m of this.members.values()) void m.start();
    let operator: ReturnType<VirtualScheduler["setInterval"]> | undefined;
    let replacing: ReturnType<VirtualScheduler["setInterval"]> | undefined;
    try {
      await this.raiseClusterVersion();
      for (const s of this.servers.values()) s.start();
      for (const g of this.gateways.values()) g.start();
      const started = this.world.now();
      operator = this.world.setInterval(() => {
        this.operatorTick();
        this.faults.tick();
      }, OPERATOR_EVERY_MS);
      // A replacement under way when the faults stop is finished by the operator during the settle.
      replacing = this.world.setInterval(() => this.replacer.tick(), OPERATOR_EVERY_MS);
      await this.runUntil(started + faultyMs);
      this.world.clearInterval(operator);
      await this.settle();
    } catch (err) {
      if (!(err instanceof StopAtViolation)) this.checker.note(`exception: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    } finally {
      this.world.clearInterval(operator);
      this.world.clearInterval(replacing);
      for (const s of this.servers.values()) s.crash();
      for (const g of this.gateways.values()) g.crash();
      for (const m of this.members.values()) m.crash();
    }
    return {
      seed: this.options.seed,
      members: this.options.members,
      virtualMs: this.world.now(),
      violations: this.checker.violations,
      stats: {
        ...this.stats,
        ...this.faults.counts,
        memberReplacements: this.replacer.begun,
        memberReplacementsDone: this.replacer.completed,
        applies: this.checker.applies,
        deaths: this.checker.deaths,
        handoffs: this.checker.handoffs,
        plannedMovesDone: this.checker.plannedMoves,
        savesAcked: this.checker.savesAcked,
        leaderHints: this.checker.leaderHints,
        gatewayRoutes: this.checker.gatewayRoutes,
        rpcCalls: this.rpc.calls,
        callsHeldForLeader: this.memberSetup.holdCounts.held,
        callsResentToNextLeader: this.memberSetup.holdCounts.resent,
        streamBreaks: this.rpc.streamBreaks,
        replays: this.rpc.replays,
      },
    };
  }

  private async raiseClusterVersion(): Promise<void> {
    let done = false;
    const attempt = (): void => {
      this.operatorCall("SetClusterVersion", { version: NEWEST_CLUSTER_VERSION }).then(
        () => (done = true),
        () => this.world.setTimeout(attempt, 200),
      );
    };
    this.world.setTimeout(attempt, 500);
    while (!done) {
      if (this.world.now() > 30_000) throw new Error("the cluster version was never raised: no leader in 30 s without faults");
      await this.runUntil(this.world.now() + 100);
    }
  }

  /** Heals everything, then waits for every meeting to be routable and every live server ALIVE. */
  private async settle(): Promise<void> {
    this.faults.stop();
    this.network.healAll();
    this.network.faults = NO_FAULTS;
    this.rpc.healAll();
    this.rpc.dropRate = 0;
    for (const m of this.members.values()) {
      if (!m.up) void m.start();
      else m.resume();
    }
    for (const s of this.servers.values()) {
      if (!s.up) s.start();
      else s.thaw();
    }
    for (const g of this.gateways.values()) if (!g.up) g.start();
    const healedAt = this.world.now();
    let problems: string[] = ["not checked yet"];
    while (this.world.now() - healedAt < LIVENESS_BOUND_MS) {
      await this.runUntil(this.world.now() + 250);
      // A supervisor restarts a server that exited (one that was leaving when the faults stopped).
      for (const s of this.servers.values()) if (!s.up) s.start();
      problems = this.convergenceProblems();
      if (problems.length === 0) break;
    }
    if (problems.length > 0) {
      this.checker.note(`liveness: ${LIVENESS_BOUND_MS} ms after the faults stopped: ${problems.slice(0, 4).join("; ")}`);
      return;
    }
    this.stats.settleMs = this.world.now() - healedAt;
    // Let every acknowledged save be applied by the leader, then check none was lost.
    await this.runUntil(this.world.now() + 1000);
    const leader = this.leader();
    if (leader?.machine) this.checker.checkFinal(leader.machine.queries);
  }

  /** What keeps the product from being settled now (empty when it is). */
  private convergenceProblems(): string[] {
    const leader = this.leader();
    if (!leader?.machine) return ["no leader"];
    const q = leader.machine.queries;
    const problems: string[] = [];
    if (this.replacer.busy) problems.push(`the replacement of a lost member is not finished (${this.replacer.state})`);
    for (const s of this.servers.values()) {
      const node = q.getNode(s.id);
      const generation = s.generation;
      if (!node || node.generation !== generation || node.liveness !== "ALIVE") {
        problems.push(`server ${s.id} (generation ${generation}) is ${node ? `${node.state} at generation ${node.generation}` : "not registered"}`);
      }
    }
    for (const r of q.listMeetings()) {
      if (r.nodeId === "") {
        problems.push(`meeting ${r.meetingId} is unassigned`);
        continue;
      }
      const held = this.servers.get(r.nodeId)?.heldEpoch(r.meetingId);
      if (held !== r.epoch) problems.push(`meeting ${r.meetingId} is routed to ${r.nodeId} epoch ${r.epoch}, which holds ${held !== undefined ? `epoch ${held}` : "nothing"}`);
      for (const g of this.gateways.values()) {
        const cached = g.cache?.get(r.meetingId);
        if (cached?.epoch !== r.epoch || cached.nodeId !== r.nodeId) {
          problems.push(`gateway ${g.id} routes ${r.meetingId} to ${cached ? `${cached.nodeId} epoch ${cached.epoch}` : "nowhere"}, not ${r.nodeId} epoch ${r.epoch}`);
        }
      }
    }
    return problems;
  }
}

export function runSystemSimulation(options: SystemSimOptions): Promise<SystemSimResult> {
  return new SystemSimulation(options).run();
}
