/**
 * coordinator: GetRoute(create=true) for new meetings, 64 in flight, from
 * one raw grpc-js client in this process, against three coordinator member
 * processes with three registered meeting servers; beside it, the same
 * client against a grpc-js server that answers at once (noop-server.ts),
 * half of its time before the cluster starts and half after it stops: the
 * ceiling of this client and stack on this machine. The client's own CPU
 * is reported for both.
 *
 * With `tls` (`npm run bench -- coordinator --tls`, or CONVENE_BENCH_TLS=1):
 * certificates and tokens from `convene certs`' library, members serving
 * TLS with tokens (every link between them TLS too), and the client on TLS
 * with the operator's token: the cost of security on the same load.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { writeCerts } from "../../src/security/certs.js";
import { type ClientSecurity, PLAINTEXT, channelOptionsWith, clientSecurity, makeClient } from "../../src/security/client-security.js";
import { loadProto, lookup } from "../../src/wire/proto.js";
import { MemberCluster, unary } from "../../test/support/member-cluster.js";
import { closedLoop } from "./latency.js";
import { type NoopServer, startNoopServer } from "./noop-process.js";

const pkg = loadProto("convene.proto");
const NodeAgentClient = lookup<grpc.ServiceClientConstructor>(pkg, "convene.v1.NodeAgent");
const CoordinatorClient = lookup<grpc.ServiceClientConstructor>(pkg, "convene.v1.Coordinator");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface LoadFigures {
  rate: number;
  p50: number;
  p99: number;
  errors: number;
  /** This process's CPU during the load, in cores: it is the one client. */
  clientCpu: number;
}

/** GetRoute(create=true) of new meetings, 64 in flight, from this process. */
async function createLoad(client: grpc.Client, seconds: number): Promise<LoadFigures> {
  const run = `${Date.now()}`;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await closedLoop(64, seconds, (_w, seq) => unary(client, "GetRoute", { meeting_id: `m-${run}-${seq}`, create: true, region: "" }, 5000));
  const cpu = process.cpuUsage(cpu0);
  const clientCpu = (cpu.user + cpu.system) / 1e3 / (performance.now() - t0);
  return { rate: Math.round(r.opsPerSecond), p50: r.latencies.ms(50), p99: r.latencies.ms(99), errors: r.errors, clientCpu };
}

/** The same load against a grpc-js server that answers at once: what this client gets through on this machine. */
async function ceiling(noop: NoopServer, seconds: number): Promise<LoadFigures> {
  const client = new CoordinatorClient(noop.address, grpc.credentials.createInsecure());
  try {
    return await createLoad(client, seconds);
  } finally {
    client.close();
  }
}

const cores = (x: number): string => `${Math.round(x * 100)}% of a core`;

/** Three meeting servers registered and heartbeating, then the create load against the leader; the cluster is closed after. */
async function clusterLoad(cluster: MemberCluster, security: ClientSecurity, seconds: number): Promise<LoadFigures> {
  const beats: NodeJS.Timeout[] = [];
  try {
    for (const id of cluster.addresses.keys()) cluster.start(id);
    const leader = await cluster.waitForLeader();
    const address = cluster.addresses.get(leader)!;
    const agent = makeClient(NodeAgentClient, address, security);
    for (let i = 0; i < 3; i++) {
      const r = await unary<{ generation: number }>(agent, "Register", { node_id: `m${i}`, address: `127.0.0.1:${9300 + i}`, capacity: 1_000_000, region: "", labels: {} });
      beats.push(setInterval(() => unary(agent, "Heartbeat", { node_id: `m${i}`, generation: r.generation }).catch(() => undefined), 500));
    }
    await sleep(300);
    const client = makeClient(CoordinatorClient, address, security);
    const figures = await createLoad(client, seconds);
    client.close();
    agent.close();
    return figures;
  } finally {
    for (const b of beats) clearInterval(b);
    await cluster.close();
  }
}

export async function benchCoordinator(seconds = 10, options: { tls?: boolean } = {}): Promise<Record<string, number | string>> {
  const ids = ["n1", "n2", "n3"];
  const certs = options.tls ? mkdtempSync(join(tmpdir(), "convene-bench-certs-")) : undefined;
  let security: ClientSecurity = PLAINTEXT;
  if (certs) {
    writeCerts({ outDir: certs, members: ids.map((id) => ({ id, hosts: [] })), agents: [], days: 1, force: false });
    security = clientSecurity({ ca: readFileSync(join(certs, "ca.crt")) }, readFileSync(join(certs, "operator.token"), "utf8").trim());
  }
  const cluster = new MemberCluster(ids, undefined, {
    app: "coordinator",
    ...(certs
      ? {
          argsFor: (id: string) => ["--cert", join(certs, `${id}.crt`), "--key", join(certs, `${id}.key`), "--ca", join(certs, "ca.crt"), "--tokens", join(certs, "tokens.yaml")],
          clientCredentials: security.credentials,
          clientOptions: channelOptionsWith(security),
        }
      : {}),
  });
  let noop: NoopServer | undefined;
  try {
    noop = await startNoopServer();
    // Half of the ceiling's time before the cluster starts, half after it stops: drift hits both alike.
    const before = await ceiling(noop, seconds / 2);
    const convene = await clusterLoad(cluster, security, seconds);
    const after = await ceiling(noop, seconds / 2);
    const bareRate = Math.round((before.rate + after.rate) / 2);
    return {
      "creates/s": convene.rate,
      "p50 ms": convene.p50,
      "p99 ms": convene.p99,
      errors: convene.errors,
      "client CPU": cores(convene.clientCpu),
      transport: certs ? "TLS + tokens (members and client)" : "plaintext, no tokens",
      "bare grpc-js creates/s": `${bareRate} (${before.rate} before, ${after.rate} after), plaintext`,
      "bare grpc-js p99 ms": Number(((before.p99 + after.p99) / 2).toFixed(2)),
      "bare grpc-js client CPU": cores((before.clientCpu + after.clientCpu) / 2),
      "convene/bare": Number((convene.rate / bareRate).toFixed(2)),
      target: "≥ 4,000/s, p99 ≤ 45 ms (2× etcd 3.4.23 here)",
    };
  } finally {
    noop?.close();
    if (certs) rmSync(certs, { recursive: true, force: true });
  }
}
