/**
 * The coordinator as a member's application: its replicated state machine,
 * the leader's failure detector, the watch streams and the two public
 * services of API.md, wired onto the member's gRPC server.
 */
import type * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import { LeaderForwarder } from "../../member/leader-forwarder.js";
import { loadProto, lookup } from "../../wire/proto.js";
import { ConfChangeError, NotLeaderError } from "../../raft/errors.js";
import { type ClientSecurity, PLAINTEXT } from "../../security/client-security.js";
import type { Cidr } from "../../security/node-address-policy.js";
import type { RaftDriver } from "../../raft-runtime/driver.js";
import { CoordinatorStateMachine } from "../coordinator-state-machine.js";
import type { CoordinatorStateConfig } from "../state-config.js";
import { type Formats, supportsVersion } from "../formats.js";
import { logApplied } from "./applied-log.js";
import { ClusterVersionMonitor } from "./cluster-version-monitor.js";
import { CoordinatorStats } from "./coordinator-stats.js";
import { CoordinatorReplica } from "./coordinator-replica.js";
import { coordinatorHandlers } from "./coordinator-service.js";
import { eventFeedHandlers } from "./event-feed-service.js";
import { FailureDetector } from "./failure-detector.js";
import { LoadReports } from "./load-reports.js";
import { MemberProbe } from "./member-probe.js";
import { NodeAddressCheck } from "./node-address-check.js";
import { moveCoordinatorHandlers, moveNodeAgentHandlers } from "./move-service.js";
import { MoveWatchdog } from "./move-watchdog.js";
import { nodeAgentHandlers } from "./node-agent-service.js";
import { withRouteEncoders } from "./route-codec.js";
import { routeFeedHandlers } from "./route-feed-service.js";
import { type StreamReport } from "./node-streams.js";
import { RouteLog } from "./route-log.js";
import { StreamReporter, reportMessage } from "./stream-reporter.js";
import { type Scheduler, realScheduler, sleepOn } from "../../time/scheduler.js";
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
  private detector: FailureDetector | undefined;
  private watchdog: MoveWatchdog | undefined;
  private loads: LoadReports | undefined;
  private readonly watches = new WatchHub();
  private readonly routes: RouteLog;
  private readonly forwarders: LeaderForwarder[] = [];
  private placer: NodeJS.Timeout | undefined;
  private probe = new MemberProbe();
  private streams: StreamReporter | undefined;
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
    const coordinator = new CoordinatorReplica(node, this.machine);
    const versions = new ClusterVersionMonitor({ coordinator, probe: this.probe, peers, ownFormats, log: (fields, message) => this.logger.info(fields, message), scheduler: this.scheduler });
    this.versions = versions;
    const detector = new FailureDetector(
      coordinator,
      {
      leaseTtlMs: this.timings.leaseTtlMs,
      heartbeatIntervalMs: this.timings.heartbeatIntervalMs,
      disconnectGraceMs: this.timings.disconnectGraceMs,
      checkEveryMs: 50,
      onError: (err) => this.logger.debug({ err }, "liveness proposal failed"),
        // A death moves meetings: worth a warning, with what the detector knew.
        onJudged: (judged) =>
          this.logger[judged.liveness === "DEAD" ? "warn" : "info"]({ ...judged, node: judged.nodeId, term: node.term }, `judged ${judged.nodeId} ${judged.liveness} (${judged.verdict})`),
      onMassSilence: (overdue, live) =>
        overdue > 0
          ? this.logger.warn({ overdue, live }, "most nodes are overdue at once: this leader is likely overloaded or cut off; judging none of them by lease")
          : this.logger.info({ live }, "nodes are heard again; leases count again"),
      },
      this.scheduler,
    );
    this.detector = detector;
    const watchdog = new MoveWatchdog(
      coordinator,
      {
        checkEveryMs: 100,
        moveTimeoutMs: this.timings.moveTimeoutMs,
        onError: (err) => this.logger.debug({ err }, "move deadline proposal failed"),
      },
      this.scheduler,
    );
    this.watchdog = watchdog;
    const loads = new LoadReports(
      coordinator,
      {
        everyMs: this.timings.loadReportMs,
        onError: (err) => this.logger.debug({ err }, "load report proposal failed"),
      },
      this.scheduler,
    );
    this.loads = loads;
    this.machine.subscribe((notice) => {
      if (notice.kind !== "applied") return;
      this.stats.noteApplied(notice.outcome, node.isLeader() ? (id) => detector.silentForMs(id) : undefined);
      logApplied(this.logger, notice.outcome, node.term);
    });
    const leading = [detector, watchdog, loads, { startLeading: () => versions.start(), stopLeading: () => versions.stop() }];
    node.on("leader", (change) => leading.forEach((l) => (change.isSelf ? l.startLeading() : l.stopLeading())));
    if (node.isLeader()) leading.forEach((l) => l.startLeading());
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
    const streams = new StreamReporter(node, detector, (report) => adminForwarder.forward("NodeConnection", reportMessage(report)), this.scheduler);
    this.streams = streams;
    server.addService(
      NodeAgent.service,
      {
        ...nodeAgentHandlers({
          coordinator,
          detector,
          loads,
          watches: this.watches,
          forwarder: agentForwarder,
          timings: this.timings,
          streams: streams.local,
          addressCheck: nodeAddresses && new NodeAddressCheck({ allow: nodeAddresses.allow, ownAddresses: () => [nodeAddresses.listen, ...peers().values()] }),
          stats: this.stats,
          logger: this.logger,
        }),
        ...moveNodeAgentHandlers({ coordinator, forwarder: agentForwarder, defaults: this.timings }),
      },
    );
    const hasLeader = (): boolean => node.status().lead !== "";
    server.addService(withRouteEncoders(Coordinator.service), {
      ...coordinatorHandlers({ coordinator, forwarder: coordinatorForwarder, peers, probe: this.probe, ownFormats, logger: this.logger }),
      ...moveCoordinatorHandlers({ coordinator, forwarder: coordinatorForwarder, defaults: this.timings }),
      ...eventFeedHandlers({ machine: this.machine, hasLeader }),
    });
    const upstreamFailed = (nodeId: string): void => {
      if (!node.isLeader()) throw new NotLeaderError(node.status().lead, node.leaderAddress());
      detector.upstreamFailed(nodeId);
    };
    server.addService(RouteFeed.service, routeFeedHandlers({ routes: this.routes, forwarder: routeForwarder, upstreamFailed, hasLeader }));
    // Meetings left waiting for room are placed as soon as room returns.
    this.placer = setInterval(() => {
      if (node.isLeader() && this.machine.unassignedMeetings().length > 0) {
        coordinator.propose({ type: "placeUnassigned" }).catch(() => undefined);
      }
    }, 500);
  }

  /** A member (or this one) reports the watch streams it holds to the leader's detector. */
  onStreamReport(report: StreamReport): void {
    this.detector?.streamsReported(report);
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
    this.streams?.stop();
    clearInterval(this.placer);
    this.detector?.stopLeading();
    this.watchdog?.stopLeading();
    this.loads?.stopLeading();
    this.versions?.stop();
    for (const f of this.forwarders) f.close();
    this.probe.close();
  }
}
