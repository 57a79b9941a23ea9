/**
 * One member process's parts, wired: LevelDB storage, the gRPC server
 * (shared by the peer transport and the public services), the Raft driver
 * and the replicated state machine. Start order matters: the storage is
 * recovered and checked before anything listens.
 */
import { randomInt } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation } from "grpc-health-check";
import type { Logger } from "pino";
import { defaultConfig } from "../raft/config.js";
import { GrpcTransport, peerServerOptions } from "../raft-runtime/grpc-transport.js";
import { LevelStorage } from "../raft-runtime/level-storage.js";
import { RaftDriver, spreadSnapshotOffset } from "../raft-runtime/driver.js";
import { SeededRandom } from "../raft/random.js";
import { CoordinatorApp } from "../coordinator/service/coordinator-app.js";
import { refuseRepeatedAuthorization } from "../security/repeated-authorization.js";
import { loadServerSecurity } from "../security/server-security.js";
import { adminServiceHandlers } from "./admin-service.js";
import { ADVERTISED_FORMATS } from "./advertised-formats.js";
import { hasClusterIdFile, readClusterId, writeClusterId } from "./cluster-identity.js";
import { forceNewClusterOnce } from "./force-new-cluster-start.js";
import { learnClusterId } from "./learn-cluster-id.js";
import { collectGarbageSoon } from "./collect-garbage.js";
import { watchEventLoop } from "./event-loop-watch.js";
import { limitHeapGrowth } from "./heap-growth.js";
import { KvStateMachine } from "./kv-state-machine.js";
import { kvServiceHandlers } from "./kv-service.js";
import { LeaderForwarder } from "./leader-forwarder.js";
import type { MemberConfig } from "./member-config.js";
import { MemberMetrics } from "./member-metrics.js";
import { type Monitoring, startMonitoring } from "./member-monitoring.js";
import { MemberServer } from "./member-server.js";
import { loadDefinition, loadProto, lookup } from "../wire/proto.js";

/** Big enough for a chunk of a snapshot or a large append batch. */
export const MAX_GRPC_MESSAGE_BYTES = 16 * 1024 * 1024;
export const MAX_STREAMS_PER_CONNECTION = 1_000;

/** Work on the event loop longer than this is logged as a warning: peers' streams stall at 2 s. */
const SLOW_MS = 500;
/** A state this large (its snapshot) makes memory worth CPU: the replaced snapshot is collected at once and heap growth limited. */
const LARGE_SNAPSHOT_BYTES = 16 * 2 ** 20;

function memoryMiB(): { rssMiB: number; heapMiB: number; buffersMiB: number } {
  const m = process.memoryUsage();
  return { rssMiB: Math.round(m.rss / 2 ** 20), heapMiB: Math.round(m.heapUsed / 2 ** 20), buffersMiB: Math.round(m.arrayBuffers / 2 ** 20) };
}

export class Member {
  private constructor(
    readonly config: MemberConfig,
    readonly node: RaftDriver,
    readonly kv: KvStateMachine,
    private readonly server: grpc.Server,
    private readonly forwarders: LeaderForwarder[],
    /** The port actually bound (differs from the config when it asked for 0). */
    readonly port: number,
    private readonly app: CoordinatorApp | undefined,
    private readonly monitoring: Monitoring,
  ) {}

  static async start(config: MemberConfig, logger: Logger): Promise<Member> {
    // First: a wrong certificate or tokens file stops the start before the disk is touched.
    const security = loadServerSecurity(config.security, config.id, logger);
    if (config.join && !hasClusterIdFile(config.dataDir) && !existsSync(join(config.dataDir, "CURRENT"))) {
      // A fresh joiner: the group's identity comes from its members.
      const learned = await learnClusterId(config.peers, config.id, security.peer);
      mkdirSync(config.dataDir, { recursive: true });
      writeClusterId(config.dataDir, learned);
    }
    const clusterId = readClusterId(config.dataDir);
    // A forced member keeps its data: an empty directory must not found a group of one.
    const storage = await LevelStorage.open(config.dataDir, config.join || config.forceNewCluster ? {} : { bootstrapVoters: [...config.peers.keys()] });
    if (config.forceNewCluster) {
      try {
        await forceNewClusterOnce(storage, config.dataDir, config.id, logger);
      } catch (err) {
        await storage.close();
        throw err;
      }
    }
    // The same port serves peers and public clients. Server-side pings every
    // 10 s (answer within 5 s) free a dead peer's stream in seconds without
    // cutting off a client whose event loop is busy for a second (the peer
    // links' own 1 s keepalive is on the sending side, in the transport).
    // A MemberServer: request bytes that do not decode get INVALID_ARGUMENT, not INTERNAL.
    const server = new MemberServer({
      ...peerServerOptions(MAX_GRPC_MESSAGE_BYTES),
      "grpc.keepalive_time_ms": 10_000,
      "grpc.keepalive_timeout_ms": 5_000,
      // Per-connection stream limit: one client cannot hold the member's
      // memory with unbounded concurrent calls. Well above what a gateway,
      // an agent or a follower forwarding its clients' calls keeps open.
      "grpc.max_concurrent_streams": MAX_STREAMS_PER_CONNECTION,
      // Authentication and authorization of every call, before any handler (none on the loopback quick start).
      ...(security.interceptors.length > 0 ? { interceptors: security.interceptors } : {}),
    });
    // Node keeps one value of a repeated authorization header; the interceptor must see them all to refuse them.
    refuseRepeatedAuthorization(server);
    const transport = new GrpcTransport({
      selfId: config.id,
      clusterId,
      peers: config.peers,
      server,
      logger,
      maxMessageBytes: MAX_GRPC_MESSAGE_BYTES,
      credentials: security.peer.credentials,
      credentialsFor: security.peerCredentials,
      token: security.peer.token,
      callingMember: security.callingMember,
    });
    const kv = new KvStateMachine();
    const app =
      config.app === "coordinator"
        ? new CoordinatorApp(logger, undefined, undefined, { placementWeights: config.placementWeights, eventLogSize: config.eventLogSize })
        : undefined;
    const metrics = new MemberMetrics();
    let monitoring: Monitoring | undefined;
    const node = await RaftDriver.start({
      observer: metrics.driverObserver,
      config: {
        ...defaultConfig(config.id, new SeededRandom(randomInt(2 ** 31))),
        electionTick: config.electionTicks,
        heartbeatTick: config.heartbeatTicks,
        idleHeartbeatTick: idleHeartbeatTicks(config),
      },
      tickMs: config.tickMs,
      storage,
      transport,
      stateMachine: app ? app.machine : kv,
      peers: config.peers,
      snapshotEvery: config.snapshotEvery,
      snapshotOffset: snapshotOffset(config),
      catchUpEntries: config.snapshotCatchUpEntries,
      requestTimeoutMs: config.requestTimeoutMs,
      onFatal: (err) => {
        // A broken invariant: stop serving rather than risk wrong answers.
        logger.fatal({ err }, "raft loop failed; exiting");
        process.exit(70);
      },
    });
    // A member restarted with a large state holds it from the start.
    if (node.status().snapshotBytes >= LARGE_SNAPSHOT_BYTES) limitHeapGrowth();
    node.on("leader", (change) => logger.info(change, "leader changed"));
    // Encoding runs in steps between other work, so its time is not a stall
    // (the event-loop watch reports those); memory is logged because a
    // snapshot is when a member holds the most.
    node.on("snapshot", (taken) => {
      logger.info({ ...taken, ...memoryMiB() }, "snapshot taken");
      if (taken.bytes >= LARGE_SNAPSHOT_BYTES) {
        limitHeapGrowth();
        // The snapshot it replaced, as large, is garbage now.
        collectGarbageSoon();
      }
    });
    watchEventLoop(logger, () => node.status(), SLOW_MS);
    const memberPkg = loadProto("member.proto");
    const KvClient = lookup<grpc.ServiceClientConstructor>(memberPkg, "convene.member.v1.Kv");
    const AdminClient = lookup<grpc.ServiceClientConstructor>(memberPkg, "convene.member.v1.MemberAdmin");
    const kvForwarder = new LeaderForwarder(node, KvClient, config.requestTimeoutMs, security.peer);
    const adminForwarder = new LeaderForwarder(node, AdminClient, config.requestTimeoutMs, security.peer);
    if (!app) server.addService(KvClient.service, kvServiceHandlers(node, kv, kvForwarder));
    server.addService(
      AdminClient.service,
      adminServiceHandlers({
        node,
        forwarder: adminForwarder,
        onNodeConnection: (report) => app?.onStreamReport(report) ?? { resync: false },
        statusExtras: () => ({
          cluster_id: clusterId,
          formats: ADVERTISED_FORMATS,
          cluster_version: app ? app.machine.queries.clusterVersion : 0,
          metrics_address: monitoring?.address ?? "",
        }),
        ...(app
          ? {
              auditLog: (limit: number) => node.read(() => app.machine.queries.auditLog(limit || undefined)),
              backupClusterId: clusterId,
              checkJoiner: (id: string, address: string) => app.checkJoiner(id, address),
            }
          : {}),
      }),
    );
    // Addresses as the group knows them now: a member added at runtime is not in config.peers.
    app?.attach(node, server, () => node.peerAddresses(), config.requestTimeoutMs, ADVERTISED_FORMATS, security.peer, { listen: config.listen, allow: config.nodeAddressAllow });
    // Standard gRPC health checking (SERVING while this member hears a
    // leader) and server reflection, so grpcurl and load balancers work.
    // Set at every leader change, so a client that saw a leader elected
    // never reads NOT_SERVING afterwards; the timer is only a backstop.
    const health = new HealthImplementation({ "": "NOT_SERVING" });
    health.addToServer(server);
    const updateHealth = (): void => {
      const status = node.status().lead !== "" ? "SERVING" : "NOT_SERVING";
      for (const name of ["", "convene.v1.NodeAgent", "convene.v1.Coordinator", "convene.member.v1.MemberAdmin"]) health.setStatus(name, status);
    };
    node.on("leader", updateHealth);
    updateHealth();
    // Every wake of an idle member costs it CPU: the backstop runs every 5 s.
    const healthTimer = setInterval(updateHealth, 5_000);
    healthTimer.unref();
    new ReflectionService({ ...loadDefinition("convene.proto"), ...loadDefinition("member.proto"), ...loadDefinition("routes.proto") }).addToServer(server);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(config.listen, security.credentials, (err, p) => (err ? reject(err) : resolve(p))),
    );
    monitoring = await startMonitoring({ config, metrics, node, app, server, peerSecurity: security.peer, clusterId, logger });
    const { tokensFile, requireClientCert } = config.security;
    logger.info(
      { id: config.id, listen: config.listen, data: config.dataDir, clusterId, status: node.status().confState, tls: security.peer.tls, requireClientCert, tokens: tokensFile !== undefined, metrics: monitoring.address },
      "member started",
    );
    return new Member(config, node, kv, server, [kvForwarder, adminForwarder], port, app, monitoring);
  }

  /** Stops serving, finishes the disk write in progress, closes everything. */
  async stop(): Promise<void> {
    await this.monitoring.close();
    this.app?.stop();
    for (const f of this.forwarders) f.close();
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    await this.node.stop();
  }
}

/**
 * An idle leader heartbeats four times per election timeout (every 100 ms
 * with the defaults), never less often than configured busy: each
 * heartbeat wakes both followers, and an idle group needs them only to
 * keep its leader. Under load it keeps heartbeatTicks (raft/config.ts).
 */
export function idleHeartbeatTicks(config: Pick<MemberConfig, "electionTicks" | "heartbeatTicks">): number {
  return Math.max(config.heartbeatTicks, Math.floor(config.electionTicks / 4));
}

/**
 * How many entries later than snapshotEvery this member takes its first
 * snapshot (RaftDriverOptions.snapshotOffset): its place among the
 * founding members' ids, as a share of snapshotEvery, so the members of a
 * three-member group snapshot a third of snapshotEvery apart, not all at
 * the same index.
 */
export function snapshotOffset(config: Pick<MemberConfig, "id" | "peers" | "snapshotEvery">): number {
  return spreadSnapshotOffset(config.peers.keys(), config.id, config.snapshotEvery);
}
