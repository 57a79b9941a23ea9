/**
 * A fleet of meeting servers for the scale benchmark, in its own process as
 * real ones would be: registers `--count` nodes named s<first>…, heartbeats
 * each every 500 ms, and re-registers a node the coordinator declared dead
 * (as an agent does), counting it. Calls go through the agent's own client
 * (CoordinatorConnection over GrpcAgentLink: a HeartbeatStream per member),
 * `--links` of them so the nodes spread over that many connections and
 * member choices, as separate servers would; each node beats as the
 * agent's HeartbeatLoop does (one beat in flight, a tick that finds one in
 * flight sent once it is answered, each attempt's deadline a third of the
 * lease, a failed attempt sent on to the next member at once).
 * Talks to the parent over stdio, one JSON line each way:
 *   out {"registered": {"s0": generation, ...}}   once all are registered
 *   in  "stats"  →  out {"reregistered": n, "heartbeats": n, "failures": n, "attemptsFailed": n, "cpuMs": n, "failuresByStatus": {...}}
 *   in  "stop"   →  exits
 */
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { GrpcAgentLink } from "../../src/node-agent/agent-link.js";
import { CoordinatorConnection, isRetryable } from "../../src/node-agent/coordinator-connection.js";
import { agentDefaults } from "../../src/node-agent/agent-config.js";
import { CoordinatorCallError } from "../../src/node-agent/errors.js";

const { values } = parseArgs({
  options: { coordinators: { type: "string" }, first: { type: "string", default: "0" }, count: { type: "string" }, capacity: { type: "string" }, links: { type: "string", default: "16" } },
});
const addresses = values.coordinators!.split(",");
const first = Number(values.first);
const count = Number(values.count);
const capacity = Number(values.capacity);
const stats = { reregistered: 0, heartbeats: 0, failures: 0, attemptsFailed: 0, leaderHintsFollowed: 0 };
/** Failed attempts (each sent on to the next member) by status name and the first details seen, for the report. */
const failuresByStatus: Record<string, { count: number; first: string }> = {};
const connections = Array.from(
  { length: Number(values.links) },
  () =>
    new CoordinatorConnection(addresses, {
      rpcTimeoutMs: agentDefaults.rpcTimeoutMs,
      retryBaseMs: agentDefaults.retryBaseMs,
      retryMaxMs: agentDefaults.retryMaxMs,
      link: new GrpcAgentLink(),
      onLeaderHint: () => stats.leaderHintsFollowed++,
    }),
);
const generations = new Map<string, number>();
/** The lease the coordinator gives, from Register: each beat's deadline is a third of it, as HeartbeatLoop.timeoutMs. */
let beatTimeoutMs = 500;

function connectionOf(seq: number): CoordinatorConnection {
  return connections[seq % connections.length]!;
}

function failedAttempt(err: unknown): void {
  stats.attemptsFailed++;
  const status = err instanceof CoordinatorCallError ? err.status : grpc.status.UNKNOWN;
  const name = grpc.status[status] ?? String(status);
  (failuresByStatus[name] ??= { count: 0, first: err instanceof Error ? err.message : String(err) }).count++;
}

/** Registers node s<seq>, retrying over the members as an agent does until it is registered. */
async function register(seq: number): Promise<number> {
  const r = (await connectionOf(seq).unary(
    "Register",
    { node_id: `s${seq}`, address: `10.${seq >> 16}.${(seq >> 8) & 255}.${seq & 255}:9000`, capacity, region: "", labels: {} },
    { timeoutMs: 10_000, attempts: Infinity },
  )) as { generation: number; heartbeat_interval_ms: number; lease_ttl_ms: number };
  beatTimeoutMs = Math.min(agentDefaults.rpcTimeoutMs, Math.max(r.heartbeat_interval_ms, Math.floor(r.lease_ttl_ms / 3)));
  return r.generation;
}

/** Nodes whose heartbeat (or re-register) is still in flight: an agent sends the next one only after. */
const inFlight = new Set<number>();
/** Nodes whose tick came while a beat was in flight: as an agent does (heartbeat-loop.ts), beat once it is answered. */
const tickMissed = new Set<number>();

function tick(seq: number): void {
  if (inFlight.has(seq)) tickMissed.add(seq);
  else void beat(seq);
}

/**
 * What HeartbeatLoop's call does (CoordinatorConnection.unary over every
 * member, each attempt with the agent's deadline), one attempt at a time so
 * that each failed attempt is counted.
 */
async function heartbeat(seq: number): Promise<void> {
  const connection = connectionOf(seq);
  const nodeId = `s${seq}`;
  for (let attempt = 1; ; attempt++) {
    try {
      await connection.unary("Heartbeat", { node_id: nodeId, generation: generations.get(nodeId), active_meetings: 0, load: 0 }, { timeoutMs: beatTimeoutMs, attempts: 1 });
      return;
    } catch (err) {
      if (!isRetryable(err)) throw err;
      failedAttempt(err);
      if (attempt === connection.memberCount) throw err;
    }
  }
}

async function beat(seq: number): Promise<void> {
  if (inFlight.has(seq)) return;
  inFlight.add(seq);
  const nodeId = `s${seq}`;
  try {
    await heartbeat(seq);
    stats.heartbeats++;
  } catch (err) {
    const status = err instanceof CoordinatorCallError ? err.status : undefined;
    if (status === grpc.status.FAILED_PRECONDITION || status === grpc.status.NOT_FOUND) {
      stats.reregistered++;
      generations.set(nodeId, await register(seq));
    } else {
      stats.failures++;
    }
  } finally {
    inFlight.delete(seq);
  }
  if (tickMissed.delete(seq)) void beat(seq);
}

let next = first;
await Promise.all(
  Array.from({ length: 32 }, async () => {
    for (let seq = next++; seq < first + count; seq = next++) {
      generations.set(`s${seq}`, await register(seq));
      // Heartbeat from the moment it is registered, as an agent does.
      setInterval(() => tick(seq), 500);
    }
  }),
);
process.stdout.write(`${JSON.stringify({ registered: Object.fromEntries(generations) })}\n`);
for await (const line of createInterface({ input: process.stdin })) {
  if (line === "stats") {
    const cpu = process.cpuUsage();
    process.stdout.write(`${JSON.stringify({ ...stats, cpuMs: Math.round((cpu.user + cpu.system) / 1000), failuresByStatus })}\n`);
  }
  if (line === "stop") process.exit(0);
}
process.exit(0);
