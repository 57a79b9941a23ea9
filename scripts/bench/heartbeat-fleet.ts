/**
 * A fleet of meeting servers for the scale benchmark, in its own process as
 * real ones would be: registers `--count` nodes named s<first>…, heartbeats
 * each every 500 ms, and re-registers a node the coordinator declared dead
 * (as an agent does), counting it. Each server is the agent's own
 * HeartbeatLoop over the agent's own client (CoordinatorConnection over
 * GrpcAgentLink: a HeartbeatStream per member), with its deadlines and its
 * rule of sending a failed attempt on to the next member; `--links` such
 * clients, so the servers spread over that many connections and member
 * choices, as separate servers would.
 * Talks to the parent over stdio, one JSON line each way:
 *   out {"registered": {"s0": generation, ...}}   once all are registered
 *   in  "stats"  →  out {"reregistered": n, "heartbeats": n, "failures": n, "attemptsFailed": n, "cpuMs": n, "failuresByStatus": {...},
 *                        "stalls": [[epoch ms, ms], ...]}
 * A stall is this process's own event loop running a timer 250 ms or more
 * late: its beats then go out late whatever the coordinator does, so the
 * benchmark can tell a late fleet from a late leader.
 *   in  "stop"   →  exits
 */
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { type AgentLink, GrpcAgentLink } from "../../src/node-agent/agent-link.js";
import { CoordinatorConnection } from "../../src/node-agent/coordinator-connection.js";
import { type HeartbeatHost, HeartbeatLoop } from "../../src/node-agent/heartbeat-loop.js";
import { agentDefaults } from "../../src/node-agent/agent-config.js";
import { isFenced } from "../../src/node-agent/errors.js";

const { values } = parseArgs({
  options: { coordinators: { type: "string" }, first: { type: "string", default: "0" }, count: { type: "string" }, capacity: { type: "string" }, links: { type: "string", default: "16" } },
});
const addresses = values.coordinators!.split(",");
const first = Number(values.first);
const count = Number(values.count);
const capacity = Number(values.capacity);
const stats = { reregistered: 0, heartbeats: 0, failures: 0, attemptsFailed: 0, leaderHintsFollowed: 0 };
/** This process's event-loop stalls of STALL_MS or more: when each ended (epoch ms) and how long it was. */
const STALL_MS = 250;
const stalls: [number, number][] = [];
{
  const everyMs = 100;
  let expected = performance.now() + everyMs;
  setInterval(() => {
    const now = performance.now();
    const lateMs = Math.round(now - expected);
    expected = now + everyMs;
    if (lateMs >= STALL_MS) stalls.push([Date.now(), lateMs]);
  }, everyMs).unref();
}
/** Failed heartbeat attempts by status name and the first details seen, for the report. */
const failuresByStatus: Record<string, { count: number; first: string }> = {};
/** The agent's link, counting every heartbeat attempt that failed (the client then sends it on to the next member or gives the beat up). */
function countingLink(): AgentLink {
  const link = new GrpcAgentLink();
  return {
    unary: (address, service, method, request, timeoutMs, onLeaderHint) =>
      link.unary(address, service, method, request, timeoutMs, onLeaderHint).catch((err: unknown) => {
        if (method === "Heartbeat") {
          stats.attemptsFailed++;
          const code = (err as { code?: unknown }).code;
          const name = typeof code === "number" ? (grpc.status[code] ?? String(code)) : "UNKNOWN";
          (failuresByStatus[name] ??= { count: 0, first: String((err as { details?: unknown }).details ?? err) }).count++;
        }
        throw err;
      }),
    watch: (address, request) => link.watch(address, request),
    close: () => link.close(),
  };
}

const connections = Array.from(
  { length: Number(values.links) },
  () =>
    new CoordinatorConnection(addresses, {
      rpcTimeoutMs: agentDefaults.rpcTimeoutMs,
      retryBaseMs: agentDefaults.retryBaseMs,
      retryMaxMs: agentDefaults.retryMaxMs,
      link: countingLink(),
      onLeaderHint: () => stats.leaderHintsFollowed++,
    }),
);

function connectionOf(seq: number): CoordinatorConnection {
  return connections[seq % connections.length]!;
}

/** Registers node s<seq>, retrying over the members as an agent does until it is registered. */
async function register(seq: number): Promise<{ generation: number; intervalMs: number; leaseTtlMs: number }> {
  const r = (await connectionOf(seq).unary(
    "Register",
    { node_id: `s${seq}`, address: `10.${seq >> 16}.${(seq >> 8) & 255}.${seq & 255}:9000`, capacity, region: "", labels: {} },
    { timeoutMs: 10_000, attempts: Infinity },
  )) as { generation: number; heartbeat_interval_ms: number; lease_ttl_ms: number };
  return { generation: r.generation, intervalMs: r.heartbeat_interval_ms, leaseTtlMs: r.lease_ttl_ms };
}

/** One meeting server: the agent's own HeartbeatLoop, registering again when fenced. */
class Server {
  private generationNow = 0;
  private registering = false;
  private readonly loop: HeartbeatLoop;

  constructor(private readonly seq: number) {
    const server = this;
    const host: HeartbeatHost = {
      nodeId: `s${seq}`,
      capacity,
      rpcTimeoutMs: agentDefaults.rpcTimeoutMs,
      mayBeat: () => !server.registering,
      generation: () => server.generationNow,
      activeMeetings: () => 0,
      loadSample: () => undefined,
      answered: () => void stats.heartbeats++,
      failed: (err) => server.failed(err),
    };
    this.loop = new HeartbeatLoop(connectionOf(seq), host);
  }

  get generation(): number {
    return this.generationNow;
  }

  async start(): Promise<void> {
    const r = await register(this.seq);
    this.generationNow = r.generation;
    this.loop.start(r.intervalMs, r.leaseTtlMs);
  }

  private failed(err: unknown): void {
    if (!isFenced(err)) {
      stats.failures++;
      return;
    }
    if (this.registering) return;
    stats.reregistered++;
    this.registering = true;
    this.loop.stop();
    void this.start().finally(() => (this.registering = false));
  }
}

const servers = new Map<string, Server>();
let next = first;
await Promise.all(
  Array.from({ length: 32 }, async () => {
    for (let seq = next++; seq < first + count; seq = next++) {
      const server = new Server(seq);
      servers.set(`s${seq}`, server);
      // Heartbeats from the moment it is registered, as an agent does.
      await server.start();
    }
  }),
);
const generations = Object.fromEntries([...servers].map(([id, s]) => [id, s.generation]));
process.stdout.write(`${JSON.stringify({ registered: generations })}\n`);
for await (const line of createInterface({ input: process.stdin })) {
  if (line === "stats") {
    const cpu = process.cpuUsage();
    process.stdout.write(`${JSON.stringify({ ...stats, cpuMs: Math.round((cpu.user + cpu.system) / 1000), failuresByStatus, stalls })}\n`);
  }
  if (line === "stop") process.exit(0);
}
process.exit(0);
