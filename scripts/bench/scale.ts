/**
 * scale: 1,000 registered meeting servers heartbeating every 500 ms and
 * 100,000 meetings with 1 KiB checkpoints on three coordinator members.
 * Reports the leader's CPU during steady heartbeats, each member's memory
 * (RSS), the size of a member's data directory, and the time for a member
 * killed with kill -9 to restart and catch up.
 */
import { execSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { loadProto, lookup } from "../../src/member/proto.js";
import { MemberCluster, unary } from "../../test/support/member-cluster.js";

/** Runs op(i) for i in [0, total) with `concurrency` in flight; returns the failures. */
async function forEachConcurrently(total: number, concurrency: number, op: (i: number, worker: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  let failures = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      for (let i = next++; i < total; i = next++) {
        try {
          await op(i, worker);
        } catch {
          failures++;
        }
      }
    }),
  );
  return failures;
}

const pkg = loadProto("convene.proto");
const NodeAgentClient = lookup<grpc.ServiceClientConstructor>(pkg, "convene.v1.NodeAgent");
const CoordinatorClient = lookup<grpc.ServiceClientConstructor>(pkg, "convene.v1.Coordinator");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime + stime, in clock ticks
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Math.round(Number(m![1]) / 1024);
}

export async function benchScale(options: { nodes?: number; meetings?: number } = {}): Promise<Record<string, number | string>> {
  const nodeCount = options.nodes ?? 1000;
  const meetingCount = options.meetings ?? 100_000;
  const ids = ["n1", "n2", "n3"];
  const cluster = new MemberCluster(ids, undefined, { app: "coordinator" });
  const beats: NodeJS.Timeout[] = [];
  try {
    for (const id of ids) cluster.start(id);
    let leader = await cluster.waitForLeader();
    await cluster.waitForAll();
    const address = cluster.addresses.get(leader)!;
    const agents = Array.from({ length: 4 }, () => new NodeAgentClient(address, grpc.credentials.createInsecure()));
    const generations = new Map<string, number>();
    await forEachConcurrently(nodeCount, 32, async (seq, w) => {
      const nodeId = `s${seq}`;
      const r = await unary<{ generation: number }>(agents[w % 4]!, "Register", { node_id: nodeId, address: `10.0.${seq >> 8}.${seq & 255}:9000`, capacity: Math.ceil((meetingCount * 2) / nodeCount), region: "", labels: {} }, 10_000);
      generations.set(nodeId, r.generation);
      // Heartbeat from the moment it is registered, as an agent does.
      const client = agents[w % 4]!;
      beats.push(setInterval(() => unary(client, "Heartbeat", { node_id: nodeId, generation: r.generation }, 2000).catch(() => undefined), 500));
    });
    // ListMeetings of 100,000 meetings is several MiB: past the 4 MiB default.
    const coordinator = new CoordinatorClient(address, grpc.credentials.createInsecure(), { "grpc.max_receive_message_length": 64 << 20 });
    const createdAt = Date.now();
    let created = 0;
    await forEachConcurrently(meetingCount, 64, async (seq) => {
      await unary(coordinator, "GetRoute", { meeting_id: `room-${seq}`, create: true, region: "" }, 10_000);
      created++;
    });
    const createSeconds = (Date.now() - createdAt) / 1000;
    let list: { meetings: { meeting_id: string; node_id: string; epoch: number }[] };
    try {
      list = await unary(coordinator, "ListMeetings", { node_id: "" }, 60_000);
    } catch (err) {
      throw new Error(`ListMeetings failed: ${String(err)}\n${cluster.recentLogs()}`);
    }
    // Random bytes: LevelDB compresses, and real meeting state is not all alike.
    const states = Array.from({ length: 64 }, () => randomBytes(1024));
    const savedAt = Date.now();
    await forEachConcurrently(list.meetings.length, 64, async (k, w) => {
      const m = list.meetings[k]!;
      await unary(agents[w % 4]!, "SaveCheckpoint", { node_id: m.node_id, generation: generations.get(m.node_id), meeting_id: m.meeting_id, epoch: m.epoch, sequence: 1, state: states[k % 64] }, 10_000);
    });
    const saveSeconds = (Date.now() - savedAt) / 1000;
    leader = await cluster.waitForLeader();
    const pids = new Map(ids.map((id) => [id, cluster.pid(id)!]));
    // Steady state: only heartbeats, for 10 s.
    const t0 = cpuTicks(pids.get(leader)!);
    await sleep(10_000);
    const leaderCpu = (cpuTicks(pids.get(leader)!) - t0) / 100 / 10;
    const rss = ids.map((id) => rssMiB(pids.get(id)!));
    const nodes = await unary<{ nodes: { state: number }[] }>(coordinator, "ListNodes", {}, 10_000);
    const dead = nodes.nodes.filter((n) => n.state !== 1).length;
    const follower = ids.find((id) => id !== leader)!;
    const dataMiB = Math.round(Number(execSync(`du -sk ${cluster.dataDir(follower)}`).toString().split("\t")[0]) / 1024);
    // Restart a follower from kill -9 and time its catch-up.
    await cluster.kill9(follower);
    const commit = (await cluster.status(leader)).commit_index;
    const restartAt = Date.now();
    cluster.start(follower);
    await cluster.waitForApplied([follower], commit, 60_000);
    const restartSeconds = (Date.now() - restartAt) / 1000;
    coordinator.close();
    for (const a of agents) a.close();
    return {
      "nodes registered": generations.size,
      "nodes not ALIVE at the end": dead,
      "meetings created": created,
      "creates/s": Math.round(created / createSeconds),
      "checkpoints saved/s": Math.round(list.meetings.length / saveSeconds),
      "leader CPU, heartbeats only (cores)": Number(leaderCpu.toFixed(2)),
      "RSS per member MiB": rss.join(" / "),
      "data dir MiB": dataMiB,
      "restart + catch-up s": Number(restartSeconds.toFixed(2)),
      targets: "≤ 512 MiB per member; restart ≤ 5 s",
    };
  } finally {
    for (const b of beats) clearInterval(b);
    await cluster.close();
  }
}
