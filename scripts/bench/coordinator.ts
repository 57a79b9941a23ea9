/**
 * coordinator: GetRoute(create=true) for new meetings, 64 in flight, from
 * one raw grpc-js client in this process, against three coordinator member
 * processes with three registered meeting servers; beside it, the same
 * client against a grpc-js server that does nothing (the stack's ceiling).
 */
import * as grpc from "@grpc/grpc-js";
import { loadProto, lookup } from "../../src/member/proto.js";
import { MemberCluster, unary } from "../../test/support/member-cluster.js";
import { closedLoop } from "./latency.js";

const pkg = loadProto("convene.proto");
const NodeAgentClient = lookup<grpc.ServiceClientConstructor>(pkg, "convene.v1.NodeAgent");
const CoordinatorClient = lookup<grpc.ServiceClientConstructor>(pkg, "convene.v1.Coordinator");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function benchCoordinator(seconds = 10): Promise<Record<string, number | string>> {
  const ids = ["n1", "n2", "n3"];
  const cluster = new MemberCluster(ids, undefined, { app: "coordinator" });
  const beats: NodeJS.Timeout[] = [];
  try {
    for (const id of ids) cluster.start(id);
    const leader = await cluster.waitForLeader();
    const address = cluster.addresses.get(leader)!;
    const agent = new NodeAgentClient(address, grpc.credentials.createInsecure());
    for (let i = 0; i < 3; i++) {
      const r = await unary<{ generation: number }>(agent, "Register", { node_id: `m${i}`, address: `127.0.0.1:${9300 + i}`, capacity: 1_000_000, region: "", labels: {} });
      beats.push(setInterval(() => unary(agent, "Heartbeat", { node_id: `m${i}`, generation: r.generation }).catch(() => undefined), 500));
    }
    await sleep(300);
    const client = new CoordinatorClient(address, grpc.credentials.createInsecure());
    const run = `${Date.now()}`;
    const r = await closedLoop(64, seconds, (_w, seq) => unary(client, "GetRoute", { meeting_id: `m-${run}-${seq}`, create: true, region: "" }, 5000));
    client.close();
    agent.close();
    return {
      "creates/s": Math.round(r.opsPerSecond),
      "p50 ms": r.latencies.ms(50),
      "p99 ms": r.latencies.ms(99),
      errors: r.errors,
      target: "≥ 4,000/s, p99 ≤ 45 ms (2× etcd 3.4.23 here)",
    };
  } finally {
    for (const b of beats) clearInterval(b);
    await cluster.close();
  }
}
