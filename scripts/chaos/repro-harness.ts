/**
 * What every scripts/chaos/repro-*.ts shares: a small cluster (the chaos
 * defaults' members, one meeting server, no gateway) on the partitions the
 * command line chooses (`--partitions auto|netns|proxy`), under the run's
 * TLS and tokens, torn down however the script ends; and the verdict as the
 * exit code: 1 reproduced, 0 not reproduced, 3 the repro failed to run.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { silenceIpServernameWarning } from "../../src/security/servername-warning.js";
import { ChaosCluster } from "./cluster.js";
import { type MemberNetwork, openNetwork, runBasePort } from "./network.js";
import { type ChaosOptions, type PartitionChoice, chaosDefaults } from "./options.js";
import { ProcessTable } from "./processes.js";
import { Rpc } from "./rpc.js";
import { type ChaosSecurity, loadCredentials, runSecurity } from "./security.js";

export interface Repro {
  readonly cluster: ChaosCluster;
  /** Calls as the operator. */
  readonly rpc: Rpc;
  readonly network: MemberNetwork;
  readonly security: ChaosSecurity;
  readonly processes: ProcessTable;
  /** The run's directory (logs, certificates), removed at the end. */
  readonly runDir: string;
  readonly say: (line: string) => void;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (line: string): void => void process.stdout.write(`${line}\n`);

/** Starts the cluster, runs `body` (true: reproduced), cleans up and exits with the verdict. */
export async function runRepro(body: (repro: Repro) => Promise<boolean>): Promise<never> {
  // Members are dialed by IP address over TLS: Node's warning about IP server names says nothing here.
  silenceIpServernameWarning();
  const i = process.argv.indexOf("--partitions");
  const partitions = (i >= 0 ? process.argv[i + 1] : "auto") as PartitionChoice;
  const options: ChaosOptions = { ...chaosDefaults, gateways: 0, servers: 1, partitions };
  const runDir = mkdtempSync(join(tmpdir(), "convene-repro-"));
  const processes = new ProcessTable(fileURLToPath(new URL("../../", import.meta.url)));
  let rpc: Rpc | undefined;
  let network: MemberNetwork | undefined;
  const cleanup = (): void => {
    processes.killAllSync();
    network?.closeSync();
    rmSync(runDir, { recursive: true, force: true });
  };
  process.on("exit", cleanup);
  process.on("SIGINT", () => process.exit(130));
  process.on("SIGTERM", () => process.exit(143));

  let code = 0;
  try {
    const base = runBasePort();
    network = await openNetwork(options.partitions, { slots: options.members + 1, basePort: base, log: say });
    say(`partitions: ${network.mechanism}`);
    const security = runSecurity(runDir, network, options);
    rpc = new Rpc(loadCredentials(security.operator()));
    const cluster = new ChaosCluster(options, network, processes, rpc, runDir, base + 250, security);
    await cluster.start();
    code = (await body({ cluster, rpc, network, security, processes, runDir, say })) ? 1 : 0;
  } catch (err) {
    say(`repro failed to run: ${(err as Error).message}`);
    code = 3;
  } finally {
    await processes.killAll();
    rpc?.close();
    await network?.close();
    cleanup();
  }
  process.exit(code);
}
