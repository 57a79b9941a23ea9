/**
 * The coordinator as a member's application: its replicated state machine,
 * the leader's failure detector, the watch streams and the two public
 * services of API.md, wired onto the member's gRPC server.
 */
import type * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import { LeaderForwarder } from "../../member/leader-forwarder.js";
import { loadProto, lookup } from "../../wire/proto.js";
import { ConfChangeError } from "../../raft/errors.js";
import { type ClientSecurity, PLAINTEXT } from "../../security/client-security.js";
import type { Cidr } from "../../security/node-address-policy.js";
import type { RaftDriver } from "../../raft-runtime/driver.js";
import { CoordinatorStateMachine } from "../coordinator-state-machine.js";
import type { CoordinatorStateConfig } from "../state-config.js";
import { type Formats, supportsVersion } from "../formats.js";
import { logApplied } from "./applied-log.js";
import { ClusterVersionMonitor } from "./cluster-version-monitor.js";
import { CoordinatorStats } from "./coordinator-stats.js";
import { CoordinatorCore } from "./coordinator-core.js";
import { coordinatorHandlers } from "./coordinator-service.js";
import { eventFeedHandlers } from "./event-feed-service.js";
import { MemberProbe } from "./member-probe.js";
import { NodeAddressCheck } from "./node-address-check.js";
import { moveCoordinatorHandlers } from "./move-service.js";
import { nodeAgentHandlers } from "./node-agent-service.js";
import { withRouteEncoders } from "./route-codec.js";
import { routeFeedHandlers } from "./route-feed-service.js";
import type { StreamReport, StreamReportAnswer } from "./node-streams.js";
import { RouteLog } from "./route-log.js";
import { reportMessage } from "./stream-reporter.js";
import { type Scheduler, realScheduler, sleepOn } from "../../time/scheduler.js";
import { loopBusyShareMeter } from "./loop-busy-share.js";
import { WatchHub } from "./watch-hub.js";

export interface CoordinatorTimings {
  readonly heartbeatIntervalMs: number;
  readonly leaseTtlMs: number;
  readonly disconnectGraceMs: number;
  readonly maxCheckpointBytes: number;
  /** How long an owner has to hand a meeting over, unless MoveMeeting says otherwise. */
  readonly moveTimeoutMs: number;
  /** At most one reportLoad command this often (load-reports.ts). */
  readonly loadReportMs: number;
}

export const defaultCoordinatorTimings: CoordinatorTimings = {
  heartbeatIntervalMs: 500,
  leaseTtlMs: 1500,
  // A crashed meeting server's connections close at once; one that only
  // switched coordinator members reconnects well within this.
  disconnectGraceMs: 300,
  maxCheckpointBytes: 256 * 1024,
  moveTimeoutMs: 10_000,
  loadReportMs: 2_000,
};

export class CoordinatorApp {
  readonly machine: CoordinatorStateMachine;
  private core: CoordinatorCore | undefined;
  private readonly watches = new WatchHub();
  private readonly routes: RouteLog;
  private readonly forwarders: LeaderForwarder[] = [];
  private probe = new MemberProbe();
  private versions: ClusterVersionMonitor | undefined;
  /** Counts for the member's metrics (coordinator-stats.ts). */
  readonly stats: CoordinatorStats;

  constructor(
    private readonly logger: Logger,
    readonly timings: CoordinatorTimings = defaultCoordinatorTimings,
    private readonly scheduler: Scheduler = realScheduler,
    /** Must be the same on every member (state-config.ts). */
    stateConfig: Partial<CoordinatorStateConfig> = {},
  ) {
    this.machine = new CoordinatorStateMachine({ config: stateConfig });
    this.routes = new RouteLog(() => this.machine.queries);
    this.stats = new CoordinatorStats(() => scheduler.now());
    this.machine.subscribe((notice) => {
      this.watches.onNotice(notice);
      this.routes.onNotice(notice);
    });
  }

  /** What the leader's failure detector stretches its timeouts by (local-health.ts); 1 on a follower or before the services run. */
  detectorTimeoutMultiplier(): number {
    return this.core?.detector.timeoutMultiplier ?? 1;
  }

  /** Wires the services once the Raft member runs. */
  attach(
    node: RaftDriver,
    server: grpc.Server,
    peers: () => ReadonlyMap<string, string>,
    requestTimeoutMs: number,
    /** What this member's binary understands: its part in the cluster version. */
    ownFormats: Formats,
    /** How this member calls the others (forwarding, status probes): TLS credentials and the member token. */
    security: ClientSecurity = PLAINTEXT,
    /** What Register accepts as a node's address (node-address-check.ts): this member's listen address and its allow list. */
    nodeAddresses: { readonly listen: string; readonly allow?: readonly Cidr[] } | undefined = undefined,
  ): void {
    this.probe = new MemberProbe(undefined, security);
    const pkg = loadProto("convene.proto");
    const NodeAgent = lookup<grpc.ServiceClientConstructor>(pkg, "convene.v1.NodeAgent");
    const Coordinator = lookup<grpc.ServiceClientConstructor>(pkg, "convene.v1.Coordinator");
    const Admin = lookup<grpc.ServiceClientConstructor>(loadProto("member.proto"), "convene.member.v1.MemberAdmin");
    const agentForwarder = new LeaderForwarder(node, NodeAgent, requestTimeoutMs, security);
    const coordinatorForwarder = new LeaderForwarder(node, Coordinator, requestTimeoutMs, security);
    const adminForwarder = new LeaderForwarder(node, Admin, requestTimeoutMs, security);
    const RouteFeed = lookup<grpc.ServiceClientConstructor>(loadProto("routes.proto"), "convene.routes.v1.RouteFeed");
    const routeForwarder = new LeaderForwarder(node, RouteFeed, requestTimeoutMs, security);
    this.forwarders.push(agentForwarder, coordinatorForwarder, adminForwarder, routeForwarder);
    const core = new CoordinatorCore({
      raft: node,
      machine: this.machine,
      watches: this.watches,
      timings: this.timings,
      scheduler: this.scheduler,
      forwardStreamReport: (report, timeoutMs) => adminForwarder.forward("NodeConnection", reportMessage(report), undefined, timeoutMs),
      stats: this.stats,
      logger: this.logger,
      loopBusyShare: loopBusyShareMeter(),
      ...(nodeAddresses
        ? { addressCheck: new NodeAddressCheck({ allow: nodeAddresses.allow, ownAddresses: () => [nodeAddresses.listen, ...peers().values()] }) }
        : {}),
    });
    this.core = core;
    const { replica: coordinator, detector } = core;
    const versions = new ClusterVersionMonitor({ coordinator, probe: this.probe, peers, ownFormats, log: (fields, message) => this.logger.info(fields, message), scheduler: this.scheduler });
    this.versions = versions;
    this.machine.subscribe((notice) => {
      if (notice.kind !== "applied") return;
      this.stats.noteApplied(notice.outcome, node.isLeader() ? (id) => detector.silentForMs(id) : undefined);
      logApplied(this.logger, notice.outcome, node.term);
    });
    node.on("leader", (change) => (change.isSelf ? versions.start() : versions.stop()));
    if (node.isLeader()) versions.start();
    server.addService(NodeAgent.service, nodeAgentHandlers(core.agents, agentForwarder, this.timings));
    const hasLeader = (): boolean => node.status().lead !== "";
    server.addService(withRouteEncoders(Coordinator.service), {
      ...coordinatorHandlers({ coordinator, forwarder: coordinatorForwarder, peers, probe: this.probe, ownFormats, logger: this.logger }),
      ...moveCoordinatorHandlers({ coordinator, forwarder: coordinatorForwarder, defaults: this.timings }),
      ...eventFeedHandlers({ machine: this.machine, hasLeader, scheduler: this.scheduler }),
    });
    const upstreamFailed = (nodeId: string): void => {
      if (!node.isLeader()) throw node.notLeader();
      detector.upstreamFailed(nodeId);
    };
    server.addService(RouteFeed.service, routeFeedHandlers({ routes: this.routes, forwarder: routeForwarder, upstreamFailed, hasLeader, scheduler: this.scheduler }));
  }

  /** A member (or this one) reports the watch streams it holds to the leader's detector. */
  onStreamReport(report: StreamReport): StreamReportAnswer {
    return this.core?.onStreamReport(report) ?? { resync: false };
  }

  /**
   * Before a member is added: at a cluster version above the baseline, it
   * must already run (README: start it first) a release that understands
   * that version, or it would apply the log differently from the others.
   */
  async checkJoiner(id: string, address: string): Promise<void> {
    const version = this.machine.queries.clusterVersion;
    if (version <= 1) return;
    // A joiner started a moment ago may not serve yet: a few tries, about 3 s.
    let answer = await this.probe.status(address);
    for (let attempt = 1; !answer && attempt < 4; attempt++) {
      await sleepOn(this.scheduler, 250);
      answer = await this.probe.status(address);
    }
    if (!answer) {
      throw new ConfChangeError(`${id} at ${address} does not answer: at cluster version ${version} a new member must be running (convene member --join) before it is added, so its release can be checked`);
    }
    if (!supportsVersion(answer.formats, version)) {
      const f = answer.formats;
      throw new ConfChangeError(`${id} at ${address} understands formats wire ${f.wire}, command ${f.command}, snapshot ${f.snapshot}, older than cluster version ${version} needs: run a newer release on it`);
    }
  }

  stop(): void {
    this.core?.stop();
    this.versions?.stop();
    for (const f of this.forwarders) f.close();
    this.probe.close();
  }
}
