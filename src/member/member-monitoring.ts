/**
 * The watchable side of a member, started by Member.start once it serves:
 * its metrics (member-metrics.ts) fed by the gRPC server and the peer
 * prober, and the HTTP port of /metrics, /livez and /readyz
 * (metrics-server.ts). A default metrics address that is already taken
 * only warns (the member still runs, unwatched, and says how to fix it);
 * one given on purpose that cannot be bound stops the start.
 */
import type { Logger } from "pino";
import type { CoordinatorApp } from "../coordinator/service/coordinator-app.js";
import type { RaftDriver } from "../raft-runtime/driver.js";
import type { ClientSecurity } from "../security/client-security.js";
import type { MemberConfig } from "./member-config.js";
import type { MemberMetrics } from "./member-metrics.js";
import type { MemberServer } from "./member-server.js";
import { type MetricsEndpoint, startMetricsServer } from "./metrics-server.js";
import { PeerProber } from "./peer-prober.js";

export interface Monitoring {
  /** Where /metrics is served ("" when it is not). */
  readonly address: string;
  close(): Promise<void>;
}

export async function startMonitoring(deps: {
  config: MemberConfig;
  metrics: MemberMetrics;
  node: RaftDriver;
  app: CoordinatorApp | undefined;
  server: MemberServer;
  peerSecurity: ClientSecurity;
  clusterId: string;
  logger: Pick<Logger, "info" | "warn">;
}): Promise<Monitoring> {
  const { config, metrics, node, logger } = deps;
  metrics.attach(node, deps.app, deps.clusterId);
  deps.server.onCallDone = (path, code) => metrics.countCall(path, code);
  const prober = new PeerProber(config.id, () => node.peerAddresses(), deps.peerSecurity, (peer, seconds) => metrics.peerProbed(peer, seconds));
  let endpoint: MetricsEndpoint | undefined;
  if (config.metricsListen !== undefined) {
    try {
      endpoint = await startMetricsServer(config.metricsListen, node, metrics);
      logger.info({ metrics: endpoint.address }, "serving /metrics, /livez and /readyz");
    } catch (err) {
      if (!config.metricsListenDefaulted) {
        prober.close();
        throw new Error(`--metrics-listen ${config.metricsListen} cannot be bound: ${(err as Error).message}`, { cause: err });
      }
      logger.warn({ metrics: config.metricsListen, err }, "the default metrics address is taken: this member serves no /metrics; pass --metrics-listen host:port (or off)");
    }
  }
  return {
    address: endpoint?.address ?? "",
    close: async () => {
      prober.close();
      await endpoint?.close();
    },
  };
}
