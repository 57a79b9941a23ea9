/**
 * Replacing a member whose disk is gone, by README's procedure, with the
 * real CLI (`convene members add|promote|remove`):
 *   1. kill -9 the victim and delete its data directory;
 *   2. start the new member (a new id) empty with --join, in the spare slot
 *      (with the slot's certificate, made at the start of the run);
 *   3. `members add NEW ADDRESS` (a learner);
 *   4. `members promote NEW` once it has caught up (refused until then);
 *   5. `members remove OLD`.
 * Each step is retried a bounded number of times; a step that never
 * succeeds ends the replacement with an error naming it.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import type { ChaosCluster } from "./cluster.js";
import { runToEnd } from "./processes.js";
import { credentialsEnv } from "./security.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class ReplacementError extends Error {
  override readonly name = "ReplacementError";
}

let cliCalls = 0;

/**
 * Runs `convene ARGS --coordinators ...` as the operator (TLS and token from
 * $CONVENE_CA, $CONVENE_CERT, $CONVENE_KEY, $CONVENE_TOKEN); returns its
 * output, throws with it on a non-zero exit.
 */
async function cli(cluster: ChaosCluster, args: readonly string[]): Promise<string> {
  const live = [...cluster.members.values()].filter((m) => m.child?.alive).map((m) => cluster.memberAddress(m.id));
  const log = join(cluster.logDir, `cli-${++cliCalls}.log`);
  const command = [process.execPath, "--import", "tsx", "src/cli.ts", ...args, "--coordinators", live.join(","), "--timeout-ms", "5000"];
  const { code, output } = await runToEnd(cluster.processes, `convene ${args.join(" ")}`, command, log, 30_000, credentialsEnv(cluster.security.operator()));
  if (code !== 0) throw new ReplacementError(`convene ${args.join(" ")} exited ${code}: ${output.trim().split("\n").slice(-3).join(" | ")}`);
  return output;
}

async function retry<T>(what: string, attempts: number, pauseMs: number, fn: () => Promise<T>): Promise<T> {
  let last: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      return await fn();
    } catch (err) {
      last = err;
      await sleep(pauseMs);
    }
  }
  throw new ReplacementError(`${what} did not succeed in ${attempts} attempts: ${(last as Error).message}`);
}

/**
 * Replaces `victim` with a new member; `pauseMs` is how long nothing runs
 * between the kill and the new member's start. Returns the new id.
 * `say` reports progress (verbose output).
 */
export async function replaceMember(cluster: ChaosCluster, victim: string, newId: string, pauseMs: number, say: (line: string) => void): Promise<void> {
  const old = cluster.members.get(victim);
  if (!old) throw new ReplacementError(`invariant: ${victim} is not a member`);
  await old.child?.kill9();
  rmSync(old.dataDir, { recursive: true, force: true });
  await sleep(pauseMs);

  const entry = cluster.addJoiningMember(newId);
  const address = cluster.network.advertisedAddress(entry.slot);
  const child = cluster.startMember(newId);
  await cluster.waitUntil(`new member ${newId} serving`, Date.now() + 30_000, async () => (await cluster.memberStatus(newId)) !== undefined, child);

  await retry(`members add ${newId}`, 6, 1000, () => cli(cluster, ["members", "add", newId, address]));
  say(`${newId} added as a learner`);
  // Promote is refused until the learner is within 1,000 entries of the commit index.
  await retry(`members promote ${newId}`, 20, 1000, async () => {
    const s = await cluster.memberStatus(newId);
    if (!s || s.applied_index === 0) throw new ReplacementError(`${newId} has applied nothing yet`);
    return cli(cluster, ["members", "promote", newId]);
  });
  say(`${newId} promoted`);
  await retry(`members remove ${victim}`, 6, 1000, () => cli(cluster, ["members", "remove", victim]));
  cluster.dropMember(victim);
  say(`${victim} removed`);
}
