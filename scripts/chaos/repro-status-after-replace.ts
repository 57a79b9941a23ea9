/**
 * Reproduction, seen while building the chaos suite's member replacement:
 * after README's "Replacing a member whose disk is gone", ClusterStatus
 * (and so `convene status`) fails with INTERNAL "Could not parse target
 * name """ through every member: the leader takes member addresses from
 * its own --peers flag (member.ts passes config.peers to the coordinator
 * app), not from the membership the group replicated with `members add`,
 * so the new member's address is "" and MemberProbe cannot dial it.
 *
 *   npx tsx scripts/chaos/repro-status-after-replace.ts [--partitions auto|netns|proxy]
 *
 * Exit 1 when ClusterStatus fails, or shows the new member unreachable or without an address.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { silenceIpServernameWarning } from "../../src/security/servername-warning.js";
import { ChaosCluster } from "./cluster.js";
import { type MemberNetwork, openNetwork, runBasePort } from "./network.js";
import { type PartitionChoice, chaosDefaults } from "./options.js";
import { ProcessTable, runToEnd } from "./processes.js";
import { replaceMember } from "./replacement.js";
import { type MemberStatus, Rpc } from "./rpc.js";
import { credentialsEnv, loadCredentials, runSecurity } from "./security.js";

// Members are dialed by IP address over TLS: Node's warning about IP server names says nothing here.
silenceIpServernameWarning();

const say = (line: string): void => void process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const i = process.argv.indexOf("--partitions");
const choice = (i >= 0 ? process.argv[i + 1] : "auto") as PartitionChoice;
const options = { ...chaosDefaults, gateways: 0, servers: 1, partitions: choice };
const runDir = mkdtempSync(join(tmpdir(), "convene-repro-"));
const processes = new ProcessTable(fileURLToPath(new URL("../../", import.meta.url)));
/** Closed at the end; made once the security is. */
let openRpc: Rpc | undefined;
let network: MemberNetwork | undefined;
const cleanup = (): void => {
  processes.killAllSync();
  network?.closeSync();
  rmSync(runDir, { recursive: true, force: true });
};
process.on("exit", cleanup);
process.on("SIGINT", () => process.exit(130));
process.on("SIGTERM", () => process.exit(143));

interface ClusterStatus {
  leader_id: string;
  members: { id: string; address: string; role: number; commit_index: number; applied_index: number; reachable: boolean }[];
}

let code = 0;
try {
  const base = runBasePort();
  network = await openNetwork(options.partitions, { slots: options.members + 1, basePort: base, log: say });
  const security = runSecurity(runDir, network, options);
  const rpc = new Rpc(loadCredentials(security.operator()));
  openRpc = rpc;
  const cluster = new ChaosCluster(options, network, processes, rpc, runDir, base + 250, security);
  await cluster.start();
  const leader = (await cluster.leader())!;
  const victim = [...cluster.members.keys()].find((id) => id !== leader)!;
  const fresh = cluster.newMemberId();
  say(`leader ${leader}; replacing ${victim} (disk wiped) with ${fresh} by README's procedure`);
  await replaceMember(cluster, victim, fresh, 200, (line) => say(`  ${line}`));
  await sleep(2000);
  const own = await rpc.call<MemberStatus>("MemberAdmin", cluster.memberAddress(fresh), "Status", {}, 2000);
  say(`${fresh} about itself (MemberAdmin.Status): role ${own.role}, applied ${own.applied_index}, voters ${own.voters.join(",")}`);
  // Each member answers ClusterStatus (a follower forwards to the leader).
  let broken = false;
  for (const id of [...cluster.members.keys()]) {
    try {
      const status = await rpc.call<ClusterStatus>("Coordinator", cluster.memberAddress(id), "ClusterStatus", {}, 3000);
      const shown = status.members.find((m) => m.id === fresh);
      say(`ClusterStatus through ${id}: ${status.members.map((m) => `${m.id} address ${JSON.stringify(m.address)} reachable ${m.reachable} applied ${m.applied_index}`).join("; ")}`);
      if (!shown || shown.address === "" || !shown.reachable) broken = true;
    } catch (err) {
      say(`ClusterStatus through ${id}: ${(err as Error).message}`);
      broken = true;
    }
  }
  const cli = await runToEnd(processes, "convene status", [process.execPath, "--import", "tsx", "src/cli.ts", "status", "--coordinators", [...cluster.members.keys()].map((id) => cluster.memberAddress(id)).join(",")], join(runDir, "status.log"), 30_000, credentialsEnv(security.operator()));
  say(`convene status (exit ${cli.code}): ${cli.output.trim().split("\n").join(" | ").slice(0, 400)}`);
  if (broken) {
    say(`REPRODUCED: after replacing ${victim} with ${fresh}, ClusterStatus does not show ${fresh} as a reachable member with its address (or fails)`);
    code = 1;
  } else {
    say("not reproduced");
  }
} catch (err) {
  say(`repro failed to run: ${(err as Error).message}`);
  code = 3;
} finally {
  await processes.killAll();
  openRpc?.close();
  await network?.close();
  cleanup();
}
process.exit(code);
