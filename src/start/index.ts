/**
 * `convene start`: three coordinator members, a gateway and two demo
 * meeting servers on localhost, as separate processes. In order:
 * validate the options → take the data directory's lock (another run on it:
 * one line, nothing started, no log touched) → check every port is free
 * (one taken: which, for what, and the flag that moves it) → start the
 * processes and wait until each serves → print where to go → supervise
 * (a child that dies is restarted with backoff, printed with the last lines
 * of its log) until Ctrl-C stops everything and releases the lock.
 */
import { DataDirLock } from "./lock-file.js";
import { LocalCluster, type RunningProcess } from "./local-cluster.js";
import { checkPortsFree } from "./port-check.js";
import { portOwners, validateStartConfig } from "./start-config.js";
import { Supervisor } from "./supervisor.js";

export { validateStartConfig, startDefaults, portOwners } from "./start-config.js";
export type { StartConfig } from "./start-config.js";
export { LocalCluster, clusterSpecs } from "./local-cluster.js";
export { ClusterRunningError, PortInUseError, StartConfigError } from "./errors.js";

/** Runs the cluster until SIGINT/SIGTERM, then exits; rejects (having started nothing, or stopped it) when it cannot start. */
export async function runStart(raw: Record<string, unknown>): Promise<void> {
  const config = validateStartConfig(raw);
  const gatewayUrl = `http://${config.host}:${config.gatewayPort}`;
  const lock = DataDirLock.acquire(config.dataDir, `${gatewayUrl}/`);
  try {
    await checkPortsFree(config.host, portOwners(config));
  } catch (err) {
    lock.release();
    throw err;
  }

  let stopping = false;
  let supervisor: Supervisor | undefined;
  const cluster = new LocalCluster(config, (proc, code, signal) => {
    if (!stopping) supervisor?.watch(proc, code, signal);
  });
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    supervisor?.stop();
    console.log(`\n${signal}: stopping every process…`);
    await cluster.stop();
    lock.release();
    console.log("stopped.");
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
  console.log(`starting convene: data in ${config.dataDir}, logs in ${config.dataDir}/logs/`);
  try {
    await cluster.start();
  } catch (err) {
    stopping = true;
    await cluster.stop(2_000);
    lock.release();
    throw err;
  }
  supervisor = new Supervisor(cluster, (text) => console.log(text));
  printWelcome([...cluster.processes.values()], gatewayUrl);
}

function printWelcome(procs: RunningProcess[], gateway: string): void {
  const row = (p: RunningProcess) => `    ${p.id.padEnd(8)} ${p.address.padEnd(22)} pid ${p.child.pid}`;
  console.log(
    [
      "",
      "convene is running.",
      `  dashboard         ${gateway}/`,
      `  a demo meeting    ${gateway}/meetings/demo/   (any id works: /meetings/<id>/)`,
      "  coordinator members (gRPC):",
      ...procs.filter((p) => p.kind === "member").map(row),
      "  gateway (HTTP):",
      ...procs.filter((p) => p.kind === "gateway").map(row),
      "  demo meeting servers (HTTP):",
      ...procs.filter((p) => p.kind === "demo-server").map(row),
      "",
      "Try a failover: open the demo meeting, send a message, `kill -9` the pid of the",
      'server named in the page header, then press "Try again" (or wait a few seconds).',
      "A process that dies is restarted (after 0.5 s, doubling to 30 s while it keeps dying).",
      "Ctrl-C stops everything.",
      "",
    ].join("\n"),
  );
}
