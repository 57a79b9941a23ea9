/**
 * `convene start`: three coordinator members, a gateway and two demo
 * meeting servers on localhost, as separate processes. Prints where to go,
 * reports what happens to the processes, and stops everything on Ctrl-C.
 */
import { LocalCluster, type RunningProcess } from "./local-cluster.js";
import { validateStartConfig } from "./start-config.js";

export { validateStartConfig, startDefaults } from "./start-config.js";
export type { StartConfig } from "./start-config.js";
export { LocalCluster, clusterSpecs } from "./local-cluster.js";

export async function runStart(raw: Record<string, unknown>): Promise<void> {
  const config = validateStartConfig(raw);
  let stopping = false;
  const cluster = new LocalCluster(config, (proc, code, signal) => {
    if (stopping) return;
    const how = signal ? `was killed (${signal})` : `exited with code ${code}`;
    console.log(`${new Date().toISOString()}  ${proc.id} (pid ${proc.child.pid}) ${how}; its log: ${proc.logFile}`);
    if (proc.kind === "demo-server") console.log(`  its meetings move to the other meeting servers; reload or press "Try again" in the meeting page`);
    if (proc.kind === "member") console.log(`  the other members keep the cluster running while a majority is up`);
  });
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping every process…`);
    await cluster.stop();
    console.log("stopped.");
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
  console.log(`starting convene: data in ${config.dataDir}, logs in ${config.dataDir}/logs/`);
  try {
    await cluster.start();
  } catch (err) {
    console.error(`convene start: ${(err as Error).message}`);
    stopping = true;
    await cluster.stop(2_000);
    process.exit(1);
  }
  printWelcome([...cluster.processes.values()], config.host, config.gatewayPort);
}

function printWelcome(procs: RunningProcess[], host: string, gatewayPort: number): void {
  const gateway = `http://${host}:${gatewayPort}`;
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
      "Ctrl-C stops everything.",
      "",
    ].join("\n"),
  );
}
