/**
 * raft: three member processes on this machine, fsync on.
 *  1. proposals through the embedded API in the leader's process, 256 in
 *     flight, 100-byte commands;
 *  2. the same through gRPC from this process (one grpc-js client, 64 in
 *     flight), beside a grpc-js server that does nothing, called the same way;
 *  3. leader kill -9 → first acknowledged write, from a client that knows
 *     all three addresses, over 10 trials.
 */
import * as grpc from "@grpc/grpc-js";
import { pino } from "pino";
import { encodeKvCommand } from "../../src/member/kv-state-machine.js";
import { Member } from "../../src/member/member.js";
import { validateMemberConfig } from "../../src/member/member-config.js";
import { loadProto, lookup } from "../../src/wire/proto.js";
import { MemberCluster, basePort, unary } from "../../test/support/member-cluster.js";
import { closedLoop } from "./latency.js";
import { startNoopServer } from "./noop-process.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const KvClient = lookup<grpc.ServiceClientConstructor>(loadProto("member.proto"), "convene.member.v1.Kv");
const VALUE = "x".repeat(100);

export async function embedded(seconds: number): Promise<Record<string, number>> {
  const cluster = new MemberCluster(["n1", "n2", "n3"], undefined, process.env.SNAP_EVERY ? { snapshotEvery: Number(process.env.SNAP_EVERY) } : {});
  const member = await Member.start(
    validateMemberConfig({ id: "n1", listen: cluster.addresses.get("n1"), peers: cluster.peersArg(), dataDir: cluster.dataDir("n1"), logLevel: "warn", app: "kv", snapshotEvery: Number(process.env.SNAP_EVERY ?? 10000) }),
    pino({ level: "warn" }),
  );
  cluster.start("n2");
  cluster.start("n3");
  try {
    for (let i = 0; i < 100 && !member.node.isLeader(); i++) {
      const lead = member.node.status().lead;
      if (lead && lead !== "n1") await unary(cluster.admin(lead), "TransferLeadership", { id: "n1", address: "" }, 5000).catch(() => {});
      await sleep(100);
    }
    if (!member.node.isLeader()) throw new Error("n1 did not become leader");
    const r = await closedLoop(256, seconds, (w, seq) => member.node.propose(encodeKvCommand({ op: "put", key: `k${seq % 10_000}`, value: VALUE })));
    return { "committed/s": Math.round(r.opsPerSecond), "p50 ms": r.latencies.ms(50), "p99 ms": r.latencies.ms(99), errors: r.errors };
  } finally {
    await member.stop();
    await cluster.close();
  }
}

async function grpcLoad(address: string, seconds: number): Promise<{ rate: number; p50: number; p99: number; errors: number }> {
  const client = new KvClient(address, grpc.credentials.createInsecure());
  try {
    const r = await closedLoop(64, seconds, (_w, seq) => unary(client, "Put", { key: `k${seq % 10_000}`, value: VALUE }, 5000));
    return { rate: Math.round(r.opsPerSecond), p50: r.latencies.ms(50), p99: r.latencies.ms(99), errors: r.errors };
  } finally {
    client.close();
  }
}

export async function throughGrpc(seconds: number): Promise<Record<string, number>> {
  const noop = await startNoopServer();
  const cluster = new MemberCluster(["n1", "n2", "n3"]);
  try {
    for (const id of ["n1", "n2", "n3"]) cluster.start(id);
    const leader = await cluster.waitForLeader();
    await sleep(500);
    // Alternate the two, so drift of the machine hits both alike.
    const ceiling1 = await grpcLoad(noop.address, seconds / 2);
    const convene1 = await grpcLoad(cluster.addresses.get(leader)!, seconds / 2);
    const ceiling2 = await grpcLoad(noop.address, seconds / 2);
    const convene2 = await grpcLoad(cluster.addresses.get(leader)!, seconds / 2);
    const ceiling = (ceiling1.rate + ceiling2.rate) / 2;
    const convene = (convene1.rate + convene2.rate) / 2;
    return {
      "convene puts/s": Math.round(convene),
      "convene p50 ms": Math.max(convene1.p50, convene2.p50),
      "convene p99 ms": Math.max(convene1.p99, convene2.p99),
      "bare grpc-js calls/s": Math.round(ceiling),
      "bare p50 ms": Math.max(ceiling1.p50, ceiling2.p50),
      "convene / bare": Number((convene / ceiling).toFixed(3)),
      errors: convene1.errors + convene2.errors,
    };
  } finally {
    noop.close();
    await cluster.close();
  }
}

/** A client that knows every address: on failure it moves to the next one at once. */
class FailoverClient {
  private readonly clients: grpc.Client[];
  private current = 0;
  constructor(addresses: string[]) {
    this.clients = addresses.map((a) => new KvClient(a, grpc.credentials.createInsecure()));
  }
  async put(key: string): Promise<void> {
    for (;;) {
      try {
        await unary(this.clients[this.current]!, "Put", { key, value: VALUE }, 300);
        return;
      } catch {
        this.current = (this.current + 1) % this.clients.length;
        await sleep(10);
      }
    }
  }
  close(): void {
    for (const c of this.clients) c.close();
  }
}

async function leaderKill(trials: number): Promise<Record<string, number>> {
  const ids = ["n1", "n2", "n3"];
  const cluster = new MemberCluster(ids, basePort());
  const times: number[] = [];
  try {
    for (const id of ids) cluster.start(id);
    for (let t = 0; t < trials; t++) {
      const leader = await cluster.waitForLeader();
      const client = new FailoverClient(ids.map((id) => cluster.addresses.get(id)!));
      // Warm: the client has found a member that answers.
      await client.put(`warm-${t}`);
      await sleep(300);
      const killedAt = performance.now();
      await cluster.kill9(leader);
      await client.put(`after-kill-${t}`);
      times.push(performance.now() - killedAt);
      client.close();
      cluster.start(leader);
      const s = await cluster.status((await cluster.waitForLeader()));
      await cluster.waitForApplied(ids, s.commit_index, 30_000);
      await sleep(500);
    }
  } finally {
    await cluster.close();
  }
  times.sort((a, b) => a - b);
  return {
    trials,
    "median ms": Math.round(times[Math.floor(times.length / 2)]!),
    "min ms": Math.round(times[0]!),
    "max ms": Math.round(times[times.length - 1]!),
  };
}

export async function benchRaft(options: { seconds?: number; trials?: number } = {}): Promise<Record<string, number | string>> {
  const seconds = options.seconds ?? 10;
  const out: Record<string, number | string> = {};
  for (const [k, v] of Object.entries(await embedded(seconds))) out[`embedded ${k}`] = v;
  for (const [k, v] of Object.entries(await throughGrpc(seconds))) out[`grpc ${k}`] = v;
  for (const [k, v] of Object.entries(await leaderKill(options.trials ?? 10))) out[`leader kill→write ${k}`] = v;
  out.targets = "embedded ≥ 20,000/s p99 ≤ 20 ms; grpc ≥ 0.75 × bare; kill→write median ≤ 1,000 ms";
  return out;
}

/**
 * raft-steady: 60 s of steady gRPC load (64 in flight) on three member
 * processes; counts elections (term changes) seen by polling every member.
 * The default timeouts must give none on this machine.
 */
export async function benchRaftSteady(seconds = 60): Promise<Record<string, number | string>> {
  const ids = ["n1", "n2", "n3"];
  const cluster = new MemberCluster(ids);
  try {
    for (const id of ids) cluster.start(id);
    const leader = await cluster.waitForLeader();
    await sleep(500);
    const startTerm = (await cluster.status(leader)).term;
    let maxTerm = startTerm;
    let polling = true;
    const poller = (async () => {
      while (polling) {
        for (const id of ids) {
          try {
            maxTerm = Math.max(maxTerm, (await cluster.status(id)).term);
          } catch {
            // a slow answer is not an election
          }
        }
        await sleep(200);
      }
    })();
    const load = await grpcLoad(cluster.addresses.get(leader)!, seconds);
    polling = false;
    await poller;
    return {
      seconds,
      "puts/s": load.rate,
      "p99 ms": load.p99,
      "elections during load": maxTerm - startTerm,
      target: "0 elections",
    };
  } finally {
    await cluster.close();
  }
}
