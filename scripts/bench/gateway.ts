/**
 * gateway: three coordinator members, two tiny meeting servers (node:http,
 * registered and heartbeating over raw gRPC, answering 200 for any meeting),
 * and one gateway, each in its own process; the load comes from this one.
 *
 * 1. The ceiling: a bare fastify route returning constant JSON, autocannon
 *    with 64 connections on `GET /route/{id}`, ids rotating.
 * 2. Cached route lookups, same load: 1,000 meetings created through the
 *    gateway first. Then 1 and 2 again with 32 connections: the same rate
 *    with fewer requests queued.
 * 3. What proxying adds: `GET /meetings/{id}/ping` for meetings of one
 *    server, 16 in flight, through the gateway and straight to the server
 *    (µs-resolution latencies, the harness of latency.ts).
 *
 * The same file is the child processes' entry point:
 *   node --import tsx scripts/bench/gateway.ts gateway CONFIG_JSON
 *   node --import tsx scripts/bench/gateway.ts meeting-servers COORDINATORS ID...
 *   node --import tsx scripts/bench/gateway.ts ceiling
 * CONVENE_BENCH_PROFILE=DIR writes a CPU profile of the gateway process there.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as grpc from "@grpc/grpc-js";
import autocannon from "autocannon";
import Fastify from "fastify";
import { startGateway, validateGatewayConfig } from "../../src/gateway/index.js";
import { loadProto, lookup } from "../../src/wire/proto.js";
import { MemberCluster, unary } from "../../test/support/member-cluster.js";
import { closedLoop } from "./latency.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const self = fileURLToPath(import.meta.url);
const MEETINGS = 1000;
/** Marks the lines a child prints for the parent. */
const PREFIX = "@bench ";

interface Child {
  readonly process: ChildProcess;
  /** Each protocol line the child printed (PREFIX + JSON), in order. */
  readonly lines: AsyncIterator<Record<string, unknown>>;
}

function spawnChild(args: string[], nodeArgs: string[] = []): Child {
  const child = spawn(process.execPath, [...nodeArgs, "--import", "tsx", self, ...args], { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
  const queue: Record<string, unknown>[] = [];
  const waiters: ((v: IteratorResult<Record<string, unknown>>) => void)[] = [];
  let buf = "";
  child.stdout!.on("data", (b: Buffer) => {
    buf += b.toString();
    for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      // Only the protocol's lines: the child's logs go to stdout too.
      if (!line.startsWith(PREFIX)) continue;
      const v = JSON.parse(line.slice(PREFIX.length)) as Record<string, unknown>;
      const w = waiters.shift();
      if (w) w({ value: v, done: false });
      else queue.push(v);
    }
  });
  child.once("exit", (code) => {
    for (const w of waiters.splice(0)) w({ value: { exited: code }, done: true });
  });
  const lines: AsyncIterator<Record<string, unknown>> = {
    next: () => (queue.length > 0 ? Promise.resolve({ value: queue.shift()!, done: false }) : new Promise((r) => waiters.push(r))),
  };
  return { process: child, lines };
}

async function line(child: Child, what: string): Promise<Record<string, unknown>> {
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer from the child within 60 s`)), 60_000).unref());
  const r = await Promise.race([child.lines.next(), timeout]);
  if (r.done) throw new Error(`${what}: the child exited (${JSON.stringify(r.value)})`);
  return r.value;
}

async function stop(child: Child | undefined): Promise<void> {
  if (!child || child.process.exitCode !== null) return;
  const exited = new Promise((r) => child.process.once("exit", r));
  child.process.kill("SIGTERM");
  const killer = setTimeout(() => child.process.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(killer);
}

/** CPU seconds (user + system) a child process used so far, from /proc (Linux); NaN elsewhere. */
function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 per second on Linux).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** autocannon on rotating paths, with the server process's CPU time per request. */
async function measured(pid: number | undefined, base: string, paths: readonly string[], connections: number, seconds: number): Promise<{ r: autocannon.Result; cpuUsPerRequest: number }> {
  const before = cpuSeconds(pid);
  const r = await cannon(base, paths, connections, seconds);
  return { r, cpuUsPerRequest: Math.round(((cpuSeconds(pid) - before) * 1e6) / Math.max(1, r.requests.total)) };
}

/** autocannon on rotating paths. */
async function cannon(base: string, paths: readonly string[], connections: number, seconds: number): Promise<autocannon.Result> {
  let i = 0;
  return autocannon({
    url: base,
    connections,
    duration: seconds,
    requests: [{ method: "GET", setupRequest: (req) => ({ ...req, path: paths[i++ % paths.length]! }) }],
  });
}

function get(agent: http.Agent, address: string, path: string): Promise<{ status: number; body: string }> {
  const [host, port] = address.split(":");
  return new Promise((resolve, reject) => {
    http
      .get({ host, port: Number(port), path, agent }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode!, body }));
      })
      .on("error", reject);
  });
}

export async function benchGateway(seconds = 10): Promise<Record<string, number | string>> {
  const ids = ["n1", "n2", "n3"];
  const cluster = new MemberCluster(ids, undefined, { app: "coordinator" });
  let servers: Child | undefined;
  let gateway: Child | undefined;
  let ceiling: Child | undefined;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  try {
    for (const id of ids) cluster.start(id);
    await cluster.waitForLeader();
    await cluster.waitForAll();
    const coordinators = [...cluster.addresses.values()];
    servers = spawnChild(["meeting-servers", coordinators.join(","), "m1", "m2"]);
    const ports = new Map<string, number>();
    for (let i = 0; i < 2; i++) {
      const s = await line(servers, "meeting servers");
      ports.set(String(s.nodeId), Number(s.port));
    }
    const profile = process.env.CONVENE_BENCH_PROFILE;
    const config = { listen: "127.0.0.1:0", coordinators, createPerMinute: 1_000_000, logLevel: "warn" };
    gateway = spawnChild(["gateway", JSON.stringify(config)], profile ? ["--cpu-prof", "--cpu-prof-dir", profile] : []);
    const gw = String((await line(gateway, "gateway")).address);

    // Warm: create the meetings through the gateway (the cache learns them from GetRoute and the feed).
    const owners = new Map<string, string>();
    const names = Array.from({ length: MEETINGS }, (_, i) => `bench-${Date.now()}-${i}`);
    for (let i = 0; i < names.length; i += 32) {
      await Promise.all(
        names.slice(i, i + 32).map(async (id) => {
          const r = await get(agent, gw, `/route/${id}`);
          if (r.status !== 200) throw new Error(`warming ${id}: ${r.status} ${r.body}`);
          owners.set(id, (JSON.parse(r.body) as { nodeId: string }).nodeId);
        }),
      );
    }

    // The ceiling first, while the members settle after the creations; then the gateway, same load.
    ceiling = spawnChild(["ceiling"]);
    const ceilingAddress = String((await line(ceiling, "ceiling")).address);
    const routePaths = names.map((id) => `/route/${id}`);
    const bare = await measured(ceiling.process.pid, `http://${ceilingAddress}`, routePaths, 64, seconds);
    const routes = await measured(gateway.process.pid, `http://${gw}`, routePaths, 64, seconds);
    // A second load point with half the connections: by Little's law the
    // same rate with half as many requests waiting halves their time in
    // queue, which is what the p99 here mostly is.
    const bareHalf = await measured(ceiling.process.pid, `http://${ceilingAddress}`, routePaths, 32, seconds);
    const routesHalf = await measured(gateway.process.pid, `http://${gw}`, routePaths, 32, seconds);
    await stop(ceiling);

    const onM1 = names.filter((id) => owners.get(id) === "m1");
    const proxyPaths = onM1.map((id) => `/meetings/${id}/ping`);
    const direct = `127.0.0.1:${ports.get("m1")}`;
    const through = (address: string) => (_w: number, seq: number) =>
      get(agent, address, proxyPaths[seq % proxyPaths.length]!).then((r) => {
        if (r.status !== 200) throw new Error(`status ${r.status}`);
      });
    const straight = await closedLoop(16, Math.max(2, seconds / 2), through(direct));
    const cpuBefore = cpuSeconds(gateway.process.pid);
    const proxied = await closedLoop(16, Math.max(2, seconds / 2), through(gw));
    const proxyCpuUs = Math.round(((cpuSeconds(gateway.process.pid) - cpuBefore) * 1e6) / Math.max(1, proxied.latencies.count()));
    return {
      "cached route lookups/s": Math.round(routes.r.requests.average),
      "route p50 ms": routes.r.latency.p50,
      "route p99 ms": routes.r.latency.p99,
      "route non-2xx + errors": routes.r.non2xx + routes.r.errors,
      "gateway CPU µs/lookup": routes.cpuUsPerRequest,
      "bare fastify req/s": Math.round(bare.r.requests.average),
      "bare fastify p99 ms": bare.r.latency.p99,
      "bare fastify CPU µs/req": bare.cpuUsPerRequest,
      "32 connections: cached route lookups/s": Math.round(routesHalf.r.requests.average),
      "32 connections: route p50 ms": routesHalf.r.latency.p50,
      "32 connections: route p99 ms": routesHalf.r.latency.p99,
      "32 connections: route non-2xx + errors": routesHalf.r.non2xx + routesHalf.r.errors,
      "32 connections: bare fastify req/s": Math.round(bareHalf.r.requests.average),
      "32 connections: bare fastify p99 ms": bareHalf.r.latency.p99,
      "direct req/s (16)": Math.round(straight.opsPerSecond),
      "direct p50 ms": straight.latencies.ms(50),
      "direct p99 ms": straight.latencies.ms(99),
      "proxied req/s (16)": Math.round(proxied.opsPerSecond),
      "proxied p50 ms": proxied.latencies.ms(50),
      "proxied p99 ms": proxied.latencies.ms(99),
      "gateway CPU µs/proxied": proxyCpuUs,
      "proxy errors": straight.errors + proxied.errors,
      "added p50 ms": Number((proxied.latencies.ms(50) - straight.latencies.ms(50)).toFixed(2)),
      "added p99 ms": Number((proxied.latencies.ms(99) - straight.latencies.ms(99)).toFixed(2)),
      target: "route lookups ≥ 25,000/s, p99 ≤ 5 ms",
    };
  } finally {
    agent.destroy();
    await Promise.all([stop(ceiling), stop(gateway), stop(servers)]);
    await cluster.close();
  }
}

// ---- child processes ----

function printLine(v: Record<string, unknown>): void {
  process.stdout.write(`${PREFIX}${JSON.stringify(v)}\n`);
}

async function runGatewayChild(rawConfig: string): Promise<void> {
  const g = await startGateway(validateGatewayConfig(JSON.parse(rawConfig) as Record<string, unknown>));
  printLine({ address: g.address });
  process.once("SIGTERM", () => void g.close().then(() => process.exit(0)));
}

/** Meeting servers that answer 200 for any meeting; registered and heartbeating (no assignment watch needed here). */
async function runMeetingServersChild(coordinators: string, nodeIds: string[]): Promise<void> {
  const NodeAgent = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.NodeAgent");
  const client = new NodeAgent(coordinators.split(",")[0]!, grpc.credentials.createInsecure());
  const servers: http.Server[] = [];
  const beats: NodeJS.Timeout[] = [];
  for (const nodeId of nodeIds) {
    const body = JSON.stringify({ ok: true, node: nodeId });
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(body);
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    servers.push(server);
    const port = (server.address() as AddressInfo).port;
    const r = await unary<{ generation: number; heartbeat_interval_ms: number }>(client, "Register", {
      node_id: nodeId, address: `127.0.0.1:${port}`, capacity: 1_000_000, region: "", labels: {},
    }, 10_000);
    beats.push(setInterval(() => unary(client, "Heartbeat", { node_id: nodeId, generation: r.generation, active_meetings: 0, load: 0 }).catch(() => undefined), r.heartbeat_interval_ms));
    printLine({ nodeId, port });
  }
  process.once("SIGTERM", () => {
    for (const b of beats) clearInterval(b);
    for (const s of servers) s.close();
    client.close();
    process.exit(0);
  });
}

async function runCeilingChild(): Promise<void> {
  const app = Fastify({ logger: false });
  const body = JSON.stringify({ meetingId: "m", nodeId: "n", address: "127.0.0.1:1", epoch: 1 });
  app.get("/route/:id", (_req, reply) => {
    reply.header("content-type", "application/json; charset=utf-8").send(body);
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  printLine({ address: `127.0.0.1:${(app.server.address() as AddressInfo).port}` });
  process.once("SIGTERM", () => void app.close().then(() => process.exit(0)));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [role, ...args] = process.argv.slice(2);
  const run =
    role === "gateway" ? runGatewayChild(args[0]!) : role === "meeting-servers" ? runMeetingServersChild(args[0]!, args.slice(1)) : role === "ceiling" ? runCeilingChild() : undefined;
  if (!run) {
    console.error(`usage: gateway.ts gateway CONFIG_JSON | meeting-servers COORDINATORS ID... | ceiling (got ${JSON.stringify(role)})`);
    process.exit(2);
  }
  run.catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
