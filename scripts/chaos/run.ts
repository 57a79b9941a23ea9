/**
 * One chaos run, start to end: network, security (CA, certificates and
 * tokens: security.ts), processes, load and faults for the duration,
 * recovery, final reads, checks, report. Whatever happens, every
 * child process is killed, the network namespaces (or proxies) removed and
 * the run directory deleted (unless --keep), also on SIGINT/SIGTERM and on
 * exit. Called by scripts/chaos.ts; returns the exit code.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ChaosCluster } from "./cluster.js";
import { FaultRunner } from "./faults.js";
import { operatorView, readFinal, restoreAll, waitHealthy } from "./final-state.js";
import { History } from "./history.js";
import { Workload } from "./load.js";
import { type MemberNetwork, openNetwork, runBasePort } from "./network.js";
import type { ChaosOptions } from "./options.js";
import { previewPlan } from "./plan.js";
import { ProcessTable } from "./processes.js";
import { printReport } from "./report.js";
import { Rpc } from "./rpc.js";
import { type ChaosSecurity, loadCredentials, runSecurity } from "./security.js";
import { StallMonitor } from "./stall-monitor.js";
import { digestServerLogs } from "./server-digest.js";
import { readServerLog } from "./server-log.js";
import { judge } from "./verdict.js";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const HEALTH_TIMEOUT_MS = 60_000;

export const EXIT_FAILED = 1;
export const EXIT_NOT_STARTED = 3;

export async function runChaos(options: ChaosOptions, say: (line: string) => void): Promise<number> {
  if (options.planOnly) {
    for (const f of previewPlan(options.seed, options.durationS, options.meanGapMs)) {
      say(`${f.lane} #${f.index}: ${f.kind} (pick ${f.pick}, ${f.durationMs} ms, after ${f.gapMs} ms)`);
    }
    return 0;
  }
  const runDir = mkdtempSync(join(tmpdir(), "convene-chaos-"));
  const processes = new ProcessTable(repoRoot);
  let rpc: Rpc | undefined;
  let network: MemberNetwork | undefined;
  let cleaned = false;
  const cleanupSync = (): void => {
    if (cleaned) return;
    cleaned = true;
    processes.killAllSync();
    network?.closeSync();
    if (!options.keep) rmSync(runDir, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    say(`chaos: stopped by ${signal}; cleaning up`);
    cleanupSync();
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  process.on("exit", cleanupSync);
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const verbose = (line: string): void => {
    if (options.verbose) say(line);
  };

  try {
    const basePort = runBasePort();
    try {
      network = await openNetwork(options.partitions, { slots: options.members + 1, basePort, log: say });
    } catch (err) {
      say(`chaos: cannot set up partitions: ${(err as Error).message}`);
      return EXIT_NOT_STARTED;
    }
    say(`partitions: ${network.mechanism}`);
    let security: ChaosSecurity;
    try {
      security = runSecurity(runDir, network, options);
      rpc = new Rpc(loadCredentials(security.operator()));
    } catch (err) {
      say(`chaos: cannot set up TLS and tokens: ${(err as Error).message}`);
      return EXIT_NOT_STARTED;
    }
    say(`security: ${security.description}`);
    const cluster = new ChaosCluster(options, network, processes, rpc, runDir, basePort + 250, security);
    try {
      await cluster.start();
    } catch (err) {
      say(`chaos: the cluster did not start: ${(err as Error).message}`);
      return EXIT_NOT_STARTED;
    }
    say(
      `chaos: seed ${options.seed}, ${options.members} members, ${options.gateways} gateways, ${options.servers} meeting servers, ` +
        `${options.clients} clients, ${options.durationS} s of faults` + (options.keep ? ` (run directory ${runDir})` : ""),
    );

    const history = new History();
    const workload = new Workload(cluster, history, options.seed);
    const startedAt = Date.now();
    const ended = (id: string): boolean => {
      const s = workload.meetings.get(id)?.state;
      return s === "ended" || s === "maybe-ended" || s === "ending";
    };
    const stalls = new StallMonitor();
    const runner = new FaultRunner(cluster, history, startedAt, say, verbose, ended, (from, to) => stalls.overlap(from, to));
    workload.start();
    await runner.run(startedAt + options.durationS * 1000);
    await workload.stop();
    const moves = await Promise.all(runner.moves);
    stalls.stop();
    verbose(`+${((Date.now() - startedAt) / 1000).toFixed(1)}s faults stopped; restoring and checking health`);

    await restoreAll(cluster);
    const health = await waitHealthy(cluster, history, HEALTH_TIMEOUT_MS);
    const final = await readFinal(workload);
    const clusterStatus = await operatorView(cluster);
    const crashes = processes.unexpectedExits();
    const digest = digestServerLogs(cluster.servers.flatMap((s) => s.logs).map(readServerLog));
    const verdict = judge({ ops: history.ops, digest, meetings: workload.meetings, final, zombies: runner.zombies, moves, health, failures: runner.failures, crashes });
    if (options.keep) {
      writeFileSync(join(runDir, "history.json"), JSON.stringify({ ops: history.ops, zombies: runner.zombies, moves, verdict }, null, 1));
    }
    printReport(say, { options, network, security, events: runner.events, history, digest, verdict, health, moves, stalls: stalls.stalls, clusterStatus });
    return verdict.lost.length > 0 || verdict.violations.length > 0 ? EXIT_FAILED : 0;
  } finally {
    await processes.killAll();
    rpc?.close();
    await network?.close();
    cleanupSync();
    process.off("exit", cleanupSync);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
