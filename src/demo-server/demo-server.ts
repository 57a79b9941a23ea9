/**
 * The demo meeting server: a small real chat server built on the node
 * agent, and the reference for embedding it.
 *
 *   const config = validateDemoServerConfig({ nodeId: "m1" });   // DemoServerConfigError
 *   const server = await startDemoServer(config, logger);        // listening and registered
 *   ...
 *   await server.close();                                        // graceful: meetings move at once
 *
 * Order of `startDemoServer`: listen first (the registered address is the
 * actual one, so port 0 works), then start the agent, which resolves once
 * Register succeeded (it keeps trying while no coordinator answers). Only
 * then can the coordinator place meetings here.
 *
 * The agent drives the rooms: onAssigned → RoomRegistry.assign (restoring
 * the checkpoint), onRevoked → revoke (sockets closed with 4001 "moved"),
 * getState → the room's state when it changed since the last committed
 * save, the 'checkpoint' event → that save committed, onHandover (a planned
 * move) → the room takes no more messages and its whole history is the
 * final checkpoint. Heartbeats report the connected participants and the
 * process's CPU use (process-load.ts).
 */
import type { Logger } from "pino";
import { pino } from "pino";
import { NodeAgent } from "../node-agent/index.js";
import { readTlsFiles } from "../security/tls-files.js";
import { type DemoServerConfig, hostOf } from "./demo-config.js";
import { buildHttpApp } from "./http-routes.js";
import { ProcessCpu } from "./process-load.js";
import { RoomRegistry } from "./room-registry.js";
import { UpgradeHandler } from "./ws-upgrade.js";

/** "Going away" (RFC 6455): the server stops; the page reconnects through the gateway. */
const CLOSE_GOING_AWAY = 1001;

export interface DemoServerCloseOptions {
  /**
   * Default true: save every room once, Deregister (the coordinator moves
   * the meetings at once, with those checkpoints), close the sockets with
   * 4001 "moved". False: just stop; the meetings move when the lease runs
   * out, from their last periodic checkpoint.
   */
  readonly deregister?: boolean;
}

export interface DemoServer {
  /** "host:port" the HTTP server listens on (the actual port when 0 was asked for). */
  readonly address: string;
  /** The address registered with the coordinator (`advertise`, else `address`). */
  readonly advertisedAddress: string;
  readonly nodeId: string;
  readonly pid: number;
  readonly agent: NodeAgent;
  /** Ids of the meetings served now. */
  meetings(): string[];
  /** Idempotent; rejects (after stopping everything) when Deregister failed. */
  close(options?: DemoServerCloseOptions): Promise<void>;
  /**
   * Test hook: die the way kill -9 looks from outside. Heartbeats stop
   * without a Deregister, every connection is dropped without a close
   * frame, nothing more is saved. The coordinator finds out by the lease.
   */
  crash(): Promise<void>;
}

/** Starts listening and registers; see the file comment for the order. Rejects with what failed, leaving nothing running. */
export async function startDemoServer(config: DemoServerConfig, logger?: Logger): Promise<DemoServer> {
  const log = (logger ?? pino({ level: config.logLevel })).child({ component: "demo-server", nodeId: config.nodeId });
  // Read first: a wrong certificate file stops the start before anything listens.
  const sec = config.security;
  const tls = sec?.ca === undefined ? undefined : readTlsFiles({ ca: sec.ca, cert: sec.cert, key: sec.key });
  const own = config.tls && readTlsFiles({ cert: config.tls.cert, key: config.tls.key }, { ca: "", cert: "tlsCert (--tls-cert)", key: "tlsKey (--tls-key)" });
  const pid = process.pid;
  const registry = new RoomRegistry(log);
  const cpu = new ProcessCpu();
  const app = buildHttpApp({ nodeId: config.nodeId, pid, registry, assignmentWaitMs: config.assignmentWaitMs, log, ...(own ? { tls: { cert: own.cert!, key: own.key! } } : {}) });
  const upgrades = new UpgradeHandler({
    nodeId: config.nodeId,
    pid,
    registry,
    assignmentWaitMs: config.assignmentWaitMs,
    readOnly: () => registry.readOnly,
    log,
  });
  app.server.on("upgrade", upgrades.handle);

  const listenHost = hostOf(config.listen);
  const shownHost = config.listen.slice(0, config.listen.lastIndexOf(":"));
  let address: string;
  let agent: NodeAgent;
  try {
    await app.listen({ host: listenHost, port: Number(config.listen.slice(config.listen.lastIndexOf(":") + 1)) });
    const bound = app.server.address();
    if (bound === null || typeof bound === "string") throw new Error("invariant: an HTTP server on a TCP port has an address object");
    address = `${shownHost}:${bound.port}`;
    agent = new NodeAgent({
      coordinators: config.coordinators,
      nodeId: config.nodeId,
      address: config.advertise ?? address,
      capacity: config.capacity,
      region: config.region,
      checkpointIntervalMs: config.checkpointIntervalMs,
      onAssigned: (meetingId, epoch, checkpoint) => {
        registry.assign(meetingId, epoch, checkpoint);
      },
      onRevoked: (meetingId) => registry.revoke(meetingId),
      getState: (meetingId) => registry.stateToSave(meetingId),
      onHandover: (meetingId) => registry.handOver(meetingId),
      reportLoad: () => ({ cpu: cpu.sample(), participants: registry.participants() }),
      logger: log.child({ component: "agent" }),
      ...(tls ? { tls: { ca: tls.ca!, cert: tls.cert, key: tls.key } } : {}),
      token: sec?.token,
      insecure: sec?.insecure,
    });
    agent.on("checkpoint", ({ meetingId, epoch }) => registry.saved(meetingId, epoch));
    log.info({ address, advertise: config.advertise ?? address, coordinators: config.coordinators }, "listening; registering with the coordinator");
    await agent.start();
  } catch (err) {
    upgrades.close();
    await app.close();
    throw err;
  }
  log.info({ address, generation: agent.generation }, "demo meeting server ready");

  let closing: Promise<void> | undefined;
  const shutdown = async (deregister: boolean): Promise<void> => {
    // Says arriving after the final save would be lost with the move; refuse them instead.
    registry.freeze();
    let failure: unknown;
    try {
      await agent.stop({ deregister });
    } catch (err) {
      failure = err;
      log.warn({ err }, "deregister failed; the meetings move when the lease runs out");
    }
    registry.closeAll(CLOSE_GOING_AWAY, "server stopping");
    upgrades.close();
    await app.close();
    log.info({ deregister }, "demo meeting server stopped");
    if (failure !== undefined) throw failure;
  };
  const crash = async (): Promise<void> => {
    await agent.stop();
    registry.closeAll(CLOSE_GOING_AWAY, "", true);
    upgrades.close();
    app.server.closeAllConnections();
    await app.close();
    log.warn("crashed on purpose (test hook)");
  };

  return {
    address,
    advertisedAddress: config.advertise ?? address,
    nodeId: config.nodeId,
    pid,
    agent,
    meetings: () => registry.ids(),
    close: (options = {}) => (closing ??= shutdown(options.deregister ?? true)),
    crash: () => (closing ??= crash()),
  };
}
