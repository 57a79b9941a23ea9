/**
 * A fleet of meeting servers for the scale benchmark, in its own process as
 * real ones would be: registers `--count` nodes named s<first>…, heartbeats
 * each every 500 ms, and re-registers a node the coordinator declared dead
 * (as an agent does), counting it. Heartbeats go through the agent's own
 * link (GrpcAgentLink: a HeartbeatStream per member), `--links` of them so
 * the nodes spread over that many connections, as separate servers would.
 * Talks to the parent over stdio, one JSON line each way:
 *   out {"registered": {"s0": generation, ...}}   once all are registered
 *   in  "stats"  →  out {"reregistered": n, "heartbeats": n, "failures": n, "cpuMs": n, "failuresByStatus": {...}}
 *   in  "stop"   →  exits
 */
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { GrpcAgentLink } from "../../src/node-agent/agent-link.js";

const { values } = parseArgs({
  options: { coordinators: { type: "string" }, first: { type: "string", default: "0" }, count: { type: "string" }, capacity: { type: "string" }, links: { type: "string", default: "16" } },
});
const addresses = values.coordinators!.split(",");
const first = Number(values.first);
const count = Number(values.count);
const capacity = Number(values.capacity);
const links = Array.from({ length: Number(values.links) }, () => new GrpcAgentLink());
const generations = new Map<string, number>();
const stats = { reregistered: 0, heartbeats: 0, failures: 0 };
/** Failed heartbeats by status name and the first details seen, for the report. */
const failuresByStatus: Record<string, { count: number; first: string }> = {};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function linkOf(seq: number): GrpcAgentLink {
  return links[seq % links.length]!;
}

/**
 * Where heartbeats go: the first member given (the leader), then wherever a
 * forwarded answer says the leader is, as the agent's connection does
 * (CoordinatorConnection.followLeaderHint); failed beats try the next member.
 */
let target = 0;
function followLeaderHint(leader: string): void {
  const i = addresses.indexOf(leader);
  if (i >= 0) target = i;
}

/** Registers node s<seq>, retrying as an agent does until it is registered. */
async function register(seq: number): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const address = addresses[(seq + attempt) % addresses.length]!;
    try {
      const r = (await linkOf(seq).unary(address, "NodeAgent", "Register", { node_id: `s${seq}`, address: `10.${seq >> 16}.${(seq >> 8) & 255}.${seq & 255}:9000`, capacity, region: "", labels: {} }, 10_000, () => undefined)) as {
        generation: number;
      };
      return r.generation;
    } catch {
      await sleep(Math.min(2000, 100 * 2 ** attempt));
    }
  }
}

/** Nodes whose heartbeat (or re-register) is still in flight: an agent sends the next one only after. */
const inFlight = new Set<number>();
/** Nodes whose tick came while a beat was in flight: as an agent does (heartbeat-loop.ts), beat once it is answered. */
const tickMissed = new Set<number>();

function tick(seq: number): void {
  if (inFlight.has(seq)) tickMissed.add(seq);
  else void beat(seq);
}

async function beat(seq: number): Promise<void> {
  if (inFlight.has(seq)) return;
  inFlight.add(seq);
  const nodeId = `s${seq}`;
  try {
    await linkOf(seq).unary(addresses[target]!, "NodeAgent", "Heartbeat", { node_id: nodeId, generation: generations.get(nodeId), active_meetings: 0, load: 0 }, 2000, followLeaderHint);
    stats.heartbeats++;
  } catch (err) {
    const code = (err as grpc.ServiceError).code;
    if (code === grpc.status.FAILED_PRECONDITION || code === grpc.status.NOT_FOUND) {
      stats.reregistered++;
      generations.set(nodeId, await register(seq));
    } else {
      stats.failures++;
      if (code === grpc.status.UNAVAILABLE) target = (target + 1) % addresses.length;
      const name = grpc.status[code] ?? String(code);
      (failuresByStatus[name] ??= { count: 0, first: String((err as grpc.ServiceError).details ?? err) }).count++;
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
