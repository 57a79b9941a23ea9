/**
 * The restart trial of compare-etcd, convene alone, repeated: three members
 * from the build, filled with RESTART_FILL meetings (250,000) by two load
 * processes; then RESTART_TRIALS times (5): kill -9 the leader under the
 * create load, keep writing RESTART_LOAD_SECONDS (15, as compare-etcd) to
 * the others, start the killed member again and time it until every member
 * has applied what the leader had committed. Prints each trial and the
 * median; the members' logs (snapshots taken and restored) stay in the
 * directory printed first. What a change to the restart path does, in a
 * fifth of compare-etcd's time.
 *   npx tsx scripts/bench/restart.mts
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MemberCluster, buildOnce } from "../../test/support/member-cluster.js";
import { MeetingServers, RESTART_POLL_MS } from "./compare-etcd.js";
import { type Job, LoadPool } from "./load-client.js";

const fill = Number(process.env.RESTART_FILL ?? 250_000);
const trials = Number(process.env.RESTART_TRIALS ?? 5);
const loadSeconds = Number(process.env.RESTART_LOAD_SECONDS ?? 15);
const ids = ["n1", "n2", "n3"];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const logDir = process.env.CONVENE_CLUSTER_LOG_DIR ?? mkdtempSync(join(tmpdir(), "restart-logs-"));
process.env.CONVENE_CLUSTER_LOG_DIR = logDir;
console.log(`member logs: ${logDir}`);
buildOnce();
const cluster = new MemberCluster(ids, undefined, { app: "coordinator", compiled: true });
const pool = new LoadPool(2);
let servers: MeetingServers | undefined;
try {
  for (const id of ids) cluster.start(id);
  await cluster.waitForLeader();
  const addresses = ids.map((id) => cluster.addresses.get(id)!);
  servers = new MeetingServers(addresses);
  await servers.start();
  const run = Date.now().toString(36);
  let jobNo = 0;
  const jobs = (start: number, seconds: number, afterFirstAckMs: number): Job[] =>
    [32, 32].map((inFlight, p) => ({
      system: "convene", op: "create", addresses, start, inFlight, seconds, deadlineMs: 1000,
      prefix: `${run}-${jobNo++}-${p}`, readKeys: [], keep: 0, afterFirstAckMs,
    }));
  let written = 0;
  const fillStarted = performance.now();
  while (written < fill) {
    const leader = ids.indexOf(await cluster.waitForLeader());
    const results = await pool.run(jobs(leader, 10, 0));
    written += results.reduce((s, r) => s + r.ops, 0);
  }
  console.log(`filled: ${written} meetings in ${((performance.now() - fillStarted) / 1000).toFixed(0)} s`);
  const times: number[] = [];
  for (let t = 1; t <= trials; t++) {
    const leaderId = await cluster.waitForLeader();
    const leader = ids.indexOf(leaderId);
    await pool.run(jobs(leader, 1.5 + loadSeconds, 300), async () => {
      await sleep(1500);
      const at = performance.timeOrigin + performance.now();
      const killed = cluster.kill9(leaderId);
      pool.broadcast(2, { type: "kill", at, member: leader });
      await killed;
    });
    const started = performance.now();
    cluster.start(leaderId);
    await cluster.waitForAll(30_000, RESTART_POLL_MS);
    const s = await cluster.status(await cluster.waitForLeader(30_000, undefined, RESTART_POLL_MS));
    await cluster.waitForApplied(ids, s.commit_index, 30_000, RESTART_POLL_MS);
    const ms = performance.now() - started;
    times.push(ms);
    console.log(`trial ${t}: ${leaderId} restarted → caught up ${Math.round(ms)} ms (commit ${s.commit_index})`);
    await sleep(500);
  }
  console.log(`median ${Math.round(median(times))} ms of ${times.map((x) => Math.round(x)).join(" / ")}`);
} finally {
  servers?.close();
  await pool.close();
  await cluster.close();
}
