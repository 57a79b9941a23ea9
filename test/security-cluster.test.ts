/**
 * Security end to end: real member processes on 127.0.0.1 with TLS and
 * tokens made by `convene certs`, then with mutual TLS where members know
 * each other by certificate alone; and a member that refuses to serve
 * plaintext beyond loopback.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway, validateGatewayConfig } from "../src/gateway/index.js";
import { FORWARDED_HEADER } from "../src/wire/headers.js";
import { loadProto, lookup } from "../src/wire/proto.js";
import { NodeAgent } from "../src/node-agent/index.js";
import { writeCerts } from "../src/security/certs.js";
import { tokenInterceptor } from "../src/security/client-security.js";
import { tokenSha256 } from "../src/security/tokens.js";
import { silenceIpServernameWarning } from "../src/security/servername-warning.js";
import { MemberCluster } from "./support/member-cluster.js";

silenceIpServernameWarning();

const root = fileURLToPath(new URL("../", import.meta.url));
const pkg = loadProto("convene.proto");
const NodeAgentClient = lookup<grpc.ServiceClientConstructor>(pkg, "convene.v1.NodeAgent");
const CoordinatorClient = lookup<grpc.ServiceClientConstructor>(pkg, "convene.v1.Coordinator");
const ids = ["n1", "n2", "n3"];
const healthPkg = grpc.loadPackageDefinition(protoLoader.loadSync(healthProtoPath, { keepCase: true, enums: Number, defaults: true }));
const Health = lookup<grpc.ServiceClientConstructor>(healthPkg, "grpc.health.v1.Health");

type Callback = (err: grpc.ServiceError | null, res?: unknown) => void;
type Fn = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: Callback) => void;

/** One unary call; `metadata` adds headers of its own (the token comes from the client's interceptor). */
function call<T = unknown>(client: grpc.Client, method: string, req: unknown, metadata = new grpc.Metadata()): Promise<T> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, Fn>)[method]!;
    fn.call(client, req, metadata, { deadline: Date.now() + 5000 }, (err, res) => (err ? reject(err) : resolve(res as T)));
  });
}

/** The status a call fails with (and its details), or "OK". */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "OK";
  } catch (err) {
    const e = err as grpc.ServiceError;
    return `${grpc.status[e.code]}: ${e.details}`;
  }
}

function cli(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("a TLS cluster made by `convene certs`, with tokens", () => {
  const dir = mkdtempSync(join(tmpdir(), "convene-certs-"));
  const file = (name: string) => join(dir, name);
  const token = (name: string) => readFileSync(file(`${name}.token`), "utf8").trim();
  let cluster: MemberCluster;
  let ca: Buffer;
  const clients: grpc.Client[] = [];
  let beat: NodeJS.Timeout | undefined;
  let leader: string;
  let follower: string;
  let m1Generation = 0;

  /** A client of `Ctor` at member `id` over TLS, sending `tokenValue` if given. */
  const client = (Ctor: grpc.ServiceClientConstructor, id: string, tokenValue?: string): grpc.Client => {
    const c = new Ctor(cluster.addresses.get(id)!, grpc.credentials.createSsl(ca), tokenValue ? { interceptors: [tokenInterceptor(tokenValue)] } : {});
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    const made = await cli(["certs", "--out", dir, "--member", "n1", "--member", "n2", "--member", "n3=convene-n3.example,10.9.9.9", "--agent", "m1", "--agent", "m2", "--days", "2"]);
    expect(made.stderr).toBe("");
    expect(made.code).toBe(0);
    for (const f of ["ca.crt", "ca.key", "n1.crt", "n3.key", "gateway.crt", "operator.key", "agent-m1.crt", "agent-m2.token", "tokens.yaml"]) expect(existsSync(file(f))).toBe(true);
    ca = readFileSync(file("ca.crt"));
    cluster = new MemberCluster(ids, undefined, {
      app: "coordinator",
      argsFor: (id) => ["--cert", file(`${id}.crt`), "--key", file(`${id}.key`), "--ca", file("ca.crt"), "--tokens", file("tokens.yaml")],
      clientCredentials: grpc.credentials.createSsl(ca),
      clientOptions: { interceptors: [tokenInterceptor(token("operator"))] },
    });
    for (const id of ids) cluster.start(id);
    // Every member serving, not only two that elected a leader: the tests call a follower by name.
    await cluster.waitForAll();
    leader = await cluster.waitForLeader();
    follower = ids.find((id) => id !== leader)!;
  });

  afterAll(async () => {
    clearInterval(beat);
    for (const c of clients) c.close();
    await cluster?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("elects a leader and serves GetRoute(create) over TLS", async () => {
    const agent = client(NodeAgentClient, follower, token("agent-m1"));
    const r = await call<{ generation: number }>(agent, "Register", { node_id: "m1", address: "127.0.0.1:29001", capacity: 10, region: "", labels: {} });
    m1Generation = r.generation;
    const heartbeat = () => call(agent, "Heartbeat", { node_id: "m1", generation: r.generation, active_meetings: 0, load: 0 });
    await heartbeat();
    beat = setInterval(() => void heartbeat().catch(() => undefined), 300);
    const gateway = client(CoordinatorClient, follower, token("gateway"));
    const route = await call<{ node_id: string; created: boolean }>(gateway, "GetRoute", { meeting_id: "secure-1", create: true, region: "" });
    expect(route).toMatchObject({ node_id: "m1", created: true });
  });

  it("routes through a gateway that reaches the members with TLS and the gateway token", async () => {
    const gateway = await startGateway(
      validateGatewayConfig({ listen: "127.0.0.1:0", coordinators: ids.map((id) => cluster.addresses.get(id)!), ca: file("ca.crt"), token: token("gateway"), logLevel: "warn" }),
    );
    try {
      const res = await fetch(`http://${gateway.address}/route/secure-2`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ meetingId: "secure-2", nodeId: "m1" });
    } finally {
      await gateway.close();
    }
  });

  it("refuses a plaintext client", async () => {
    const plain = new CoordinatorClient(cluster.addresses.get(leader)!, grpc.credentials.createInsecure(), { interceptors: [tokenInterceptor(token("gateway"))] });
    clients.push(plain);
    expect(await outcome(call(plain, "GetRoute", { meeting_id: "secure-1" }))).toMatch(/^UNAVAILABLE/);
  });

  it("answers UNAUTHENTICATED without a valid token, PERMISSION_DENIED beyond a role's rights", async () => {
    const anonymous = client(CoordinatorClient, leader);
    expect(await outcome(call(anonymous, "GetRoute", { meeting_id: "secure-1" }))).toMatch(/^UNAUTHENTICATED: .*needs credentials: send the metadata "authorization: Bearer <token>"/);
    const wrong = client(CoordinatorClient, leader, "x".repeat(43));
    expect(await outcome(call(wrong, "GetRoute", { meeting_id: "secure-1" }))).toBe("UNAUTHENTICATED: the token is not in the members' tokens file");
    const gateway = client(CoordinatorClient, leader, token("gateway"));
    expect(await outcome(call(gateway, "DrainNode", { node_id: "m1" }))).toBe("PERMISSION_DENIED: role gateway may not call convene.v1.Coordinator/DrainNode (allowed: operator)");
    const agent = client(NodeAgentClient, leader, token("agent-m1"));
    expect(await outcome(call(agent, "Heartbeat", { node_id: "m2", generation: 1 }))).toMatch(/^PERMISSION_DENIED: the agent token of node m1 may not act for node "m2"/);
    const agentM2 = client(NodeAgentClient, leader, token("agent-m2"));
    expect(await outcome(call(agentM2, "Register", { node_id: "m1", address: "127.0.0.1:29001", capacity: 10 }))).toMatch(/^PERMISSION_DENIED/);
    // Health checking stays open (documented): load balancers have no token.
    const health = client(Health, leader);
    expect(await call<{ status: number }>(health, "Check", { service: "" })).toEqual({ status: 1 }); // SERVING
  });

  it("keeps the rules on calls forwarded by a follower, and a forwarded marker grants nothing", async () => {
    const gateway = client(CoordinatorClient, follower, token("gateway"));
    expect(await outcome(call(gateway, "DrainNode", { node_id: "m1" }))).toMatch(/^PERMISSION_DENIED: role gateway/);
    // (The first test registered and heartbeats through a follower: forwarded with the agent's token, accepted by the leader.)
    const agent = client(NodeAgentClient, follower, token("agent-m1"));
    expect(await outcome(call(agent, "Register", { node_id: "m2", address: "127.0.0.1:29002", capacity: 10 }))).toMatch(/^PERMISSION_DENIED: the agent token of node m1/);
    const forged = new grpc.Metadata();
    forged.set(FORWARDED_HEADER, follower);
    const agentAtLeader = client(NodeAgentClient, leader, token("agent-m1"));
    expect(await outcome(call(agentAtLeader, "Heartbeat", { node_id: "m2", generation: 1 }, forged))).toMatch(/^PERMISSION_DENIED: the agent token of node m1/);
    const anonymousAtLeader = client(CoordinatorClient, leader);
    expect(await outcome(call(anonymousAtLeader, "DrainNode", { node_id: "m1" }, forged))).toMatch(/^UNAUTHENTICATED/);
  });

  it("checks every beat on HeartbeatStream against the agent's token, and forwards the token with it", async () => {
    const agent = client(NodeAgentClient, follower, token("agent-m1"));
    const stream = (agent as unknown as { HeartbeatStream(): grpc.ClientDuplexStream<unknown, { sequence: number; code: number; leader: string }> }).HeartbeatStream();
    stream.on("error", () => undefined);
    const first = new Promise<{ sequence: number; code: number; leader: string }>((resolve) => stream.once("data", resolve));
    const status = new Promise<grpc.StatusObject>((resolve) => stream.on("status", resolve));
    // Forwarded by the follower with the agent's token, accepted by the leader.
    stream.write({ node_id: "m1", generation: m1Generation, sequence: 1 });
    expect(await first).toMatchObject({ sequence: 1, code: grpc.status.OK, leader: cluster.addresses.get(leader) });
    stream.write({ node_id: "m2", generation: 1, sequence: 2 });
    const end = await status;
    expect(`${grpc.status[end.code]}: ${end.details}`).toMatch(/^PERMISSION_DENIED: the agent token of node m1 may not act for node "m2"/);
  });

  it("serves the node agent library and the operator CLI over TLS with their tokens", async () => {
    const agent = new NodeAgent({
      coordinators: ids.map((id) => cluster.addresses.get(id)!),
      nodeId: "m2",
      address: "127.0.0.1:29002",
      capacity: 10,
      tls: { ca },
      token: token("agent-m2"),
      onAssigned: () => undefined,
      onRevoked: () => undefined,
      getState: () => undefined,
    });
    try {
      await agent.start();
      expect(agent.generation).toBeGreaterThan(0);
      const nodes = await cli(["nodes", "--json", "--coordinators", cluster.addresses.get(follower)!, "--ca", file("ca.crt")], { CONVENE_TOKEN: token("operator") });
      expect(nodes.stderr).toBe("");
      expect((JSON.parse(nodes.stdout) as { nodes: { node_id: string }[] }).nodes.map((n) => n.node_id).sort()).toEqual(["m1", "m2"]);
    } finally {
      await agent.stop();
    }
  });

  it("lets the operator drain, through a follower", async () => {
    const operator = client(CoordinatorClient, follower, token("operator"));
    expect(await outcome(call(operator, "DrainNode", { node_id: "m1", migrate: false }))).toBe("OK");
    const nodes = await call<{ nodes: { node_id: string; state: number }[] }>(operator, "ListNodes", {});
    expect(nodes.nodes.find((n) => n.node_id === "m1")?.state).toBe(4); // DRAINING
  });
});

describe("mutual TLS: members know each other by certificate", () => {
  const dir = mkdtempSync(join(tmpdir(), "convene-mtls-"));
  const file = (name: string) => join(dir, name);
  const gatewayToken = "g".repeat(40);
  let cluster: MemberCluster;
  const clients: grpc.Client[] = [];
  let ca: Buffer;

  const client = (credentials: grpc.ChannelCredentials, tokenValue?: string): grpc.Client => {
    const c = new CoordinatorClient(cluster.addresses.get("n1")!, credentials, tokenValue ? { interceptors: [tokenInterceptor(tokenValue)] } : {});
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    writeCerts({ outDir: dir, members: ids.map((id) => ({ id, hosts: [] })), agents: [], days: 1, force: false });
    // No member token: members must get by on their certificates. The gateway's token is kept as a hash.
    writeFileSync(file("tokens.yaml"), `tokens:\n  - role: gateway\n    sha256: ${tokenSha256(gatewayToken)}\n  - role: operator\n    token: ${readFileSync(file("operator.token"), "utf8").trim()}\n`);
    ca = readFileSync(file("ca.crt"));
    cluster = new MemberCluster(ids, undefined, {
      app: "coordinator",
      argsFor: (id) => ["--cert", file(`${id}.crt`), "--key", file(`${id}.key`), "--ca", file("ca.crt"), "--tokens", file("tokens.yaml"), "--require-client-cert"],
      clientCredentials: grpc.credentials.createSsl(ca, readFileSync(file("operator.key")), readFileSync(file("operator.crt"))),
      clientOptions: { interceptors: [tokenInterceptor(readFileSync(file("operator.token"), "utf8").trim())] },
    });
    for (const id of ids) cluster.start(id);
    await cluster.waitForAll();
    await cluster.waitForLeader();
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await cluster?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("elects a leader and probes every member with certificates alone", async () => {
    const gateway = client(grpc.credentials.createSsl(ca, readFileSync(file("gateway.key")), readFileSync(file("gateway.crt"))), gatewayToken);
    const status = await call<{ members: { id: string; reachable: boolean }[] }>(gateway, "ClusterStatus", {});
    expect(status.members.map((m) => [m.id, m.reachable])).toEqual(ids.map((id) => [id, true]));
  });

  it("refuses a client without a certificate", async () => {
    const noCert = client(grpc.credentials.createSsl(ca), gatewayToken);
    expect(await outcome(call(noCert, "ClusterStatus", {}))).toMatch(/^UNAVAILABLE/);
  });

  it("takes a certificate for a member only with OU=member, and a member's certificate for nothing more", async () => {
    const gatewayCertOnly = client(grpc.credentials.createSsl(ca, readFileSync(file("gateway.key")), readFileSync(file("gateway.crt"))));
    expect(await outcome(call(gatewayCertOnly, "ClusterStatus", {}))).toMatch(/^UNAUTHENTICATED/);
    const memberCert = client(grpc.credentials.createSsl(ca, readFileSync(file("n2.key")), readFileSync(file("n2.crt"))));
    expect(await outcome(call(memberCert, "DrainNode", { node_id: "m1" }))).toMatch(/^PERMISSION_DENIED: role member may not call/);
  });
});

describe("the listen rule", () => {
  it("refuses to serve plaintext beyond loopback, saying how to fix it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "convene-listen-"));
    try {
      const r = await cli(["member", "--id", "n1", "--listen", "0.0.0.0:0", "--peers", "n1=0.0.0.0:0", "--data", join(dir, "n1")]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/convene member: listen 0\.0\.0\.0:0 is not a loopback address and TLS is off: turn TLS on with --cert FILE --key FILE --ca FILE .* or serve plaintext anyway with --insecure/);
      expect(existsSync(join(dir, "n1"))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
