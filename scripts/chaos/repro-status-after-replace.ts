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
import { join } from "node:path";
import type { MemberStatus } from "../../src/cli/render.js";
import { runRepro, sleep } from "./repro-harness.js";
import { runToEnd } from "./processes.js";
import { replaceMember } from "./replacement.js";
import { credentialsEnv } from "./security.js";

interface ClusterStatus {
  leader_id: string;
  members: { id: string; address: string; role: number; commit_index: number; applied_index: number; reachable: boolean }[];
}

await runRepro(async ({ cluster, rpc, security, processes, runDir, say }) => {
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
    return true;
  } else {
    say("not reproduced");
  }
  return false;
});
