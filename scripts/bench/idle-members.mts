/**
 * Three coordinator members from the build, nothing else (no meeting
 * servers, no load): each member's CPU over IDLE_S seconds (10) from
 * /proc/<pid>/stat, after 5 s of settling. Flags after `--` go to every
 * member, to see what the idle CPU depends on:
 *   npx tsx scripts/bench/idle-members.mts -- --tick-ms 40 --election-ticks 10 --heartbeat-ticks 1
 * IDLE_ETCD=1 then measures three idle etcd members (compare-etcd's) the
 * same way, in the same sitting: idle CPU is comparable only within one.
 */
import { readFileSync } from "node:fs";
import { MemberCluster, buildOnce } from "../../test/support/member-cluster.js";
import { EtcdCluster, ensureEtcd, freeEtcdBasePort } from "./etcd-cluster.js";

const seconds = Number(process.env.IDLE_S ?? 10);
const dash = process.argv.indexOf("--");
const flags = dash >= 0 ? process.argv.slice(dash + 1) : [];
await buildOnce();
const ids = ["i1", "i2", "i3"];
const cluster = new MemberCluster(ids, undefined, { app: "coordinator", compiled: true });
for (const id of ids) cluster.start(id, { args: flags });
const leader = await cluster.waitForLeader(30_000);
await new Promise((r) => setTimeout(r, 5_000));
const cpuSeconds = (pid: number): number => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
};
const pids = ids.map((id) => cluster.pid(id)!);
const before = pids.map(cpuSeconds);
const t0 = performance.now();
await new Promise((r) => setTimeout(r, seconds * 1000));
const elapsed = (performance.now() - t0) / 1000;
console.log(`idle CPU over ${seconds} s${flags.length ? ` (${flags.join(" ")})` : ""}: ${ids.map((id, k) => `${id}${id === leader ? " (leader)" : ""} ${(((cpuSeconds(pids[k]!) - before[k]!) / elapsed) * 100).toFixed(1)}%`).join(", ")}`);
await cluster.close();
if (process.env.IDLE_ETCD === "1") {
  const etcd = new EtcdCluster(ensureEtcd(), await freeEtcdBasePort());
  try {
    for (let i = 0; i < 3; i++) etcd.start(i);
    const etcdLeader = await etcd.waitForLeader();
    await new Promise((r) => setTimeout(r, 5_000));
    const etcdPids = [0, 1, 2].map((i) => etcd.pid(i)!);
    const etcdBefore = etcdPids.map(cpuSeconds);
    const e0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const etcdElapsed = (performance.now() - e0) / 1000;
    console.log(`etcd idle CPU over ${seconds} s: ${etcdPids.map((p, k) => `${etcd.names[k]}${k === etcdLeader ? " (leader)" : ""} ${(((cpuSeconds(p) - etcdBefore[k]!) / etcdElapsed) * 100).toFixed(1)}%`).join(", ")}`);
  } finally {
    await etcd.close();
  }
}
process.exit(0);
