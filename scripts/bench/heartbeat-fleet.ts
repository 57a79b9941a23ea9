/**
 * A fleet of meeting servers for the scale benchmark, in its own process as
 * real ones would be: registers `--nodes` nodes, heartbeats each every
 * 500 ms, and re-registers a node the coordinator declared dead (as an
 * agent does), counting it. Talks to the parent over stdio, one JSON line
 * each way:
 *   out {"registered": {"s0": generation, ...}}   once all are registered
 *   in  "stats"  →  out {"reregistered": n, "heartbeats": n, "failures": n}
 *   in  "stop"   →  exits
 */
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { loadProto, lookup } from "../../src/wire/proto.js";
import { unary } from "../../test/support/member-cluster.js";

const { values } = parseArgs({ options: { coordinators: { type: "string" }, nodes: { type: "string" }, capacity: { type: "string" } } });
const addresses = values.coordinators!.split(",");
const nodeCount = Number(values.nodes);
const capacity = Number(values.capacity);
const NodeAgent = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.NodeAgent");
// A few channels per member, as many separate servers would spread over connections.
const clients = addresses.flatMap((a) => Array.from({ length: 2 }, () => new NodeAgent(a, grpc.credentials.createInsecure())));
const generations = new Map<string, number>();
const stats = { reregistered: 0, heartbeats: 0, failures: 0 };

function register(seq: number): Promise<number> {
  const client = clients[seq % clients.length]!;
  return unary<{ generation: number }>(client, "Register", { node_id: `s${seq}`, address: `10.0.${seq >> 8}.${seq & 255}:9000`, capacity, region: "", labels: {} }, 10_000).then((r) => r.generation);
}

/** Nodes whose heartbeat (or re-register) is still in flight: an agent sends the next one only after. */
const inFlight = new Set<number>();

async function beat(seq: number): Promise<void> {
  if (inFlight.has(seq)) return;
  inFlight.add(seq);
  const nodeId = `s${seq}`;
  const client = clients[seq % clients.length]!;
  try {
    await unary(client, "Heartbeat", { node_id: nodeId, generation: generations.get(nodeId) }, 2000);
    stats.heartbeats++;
  } catch (err) {
    const code = (err as grpc.ServiceError).code;
    if (code === grpc.status.FAILED_PRECONDITION || code === grpc.status.NOT_FOUND) {
      stats.reregistered++;
      generations.set(nodeId, await register(seq).catch(() => generations.get(nodeId)!));
    } else {
      stats.failures++;
    }
  } finally {
    inFlight.delete(seq);
  }
}

let next = 0;
await Promise.all(
  Array.from({ length: 32 }, async () => {
    for (let seq = next++; seq < nodeCount; seq = next++) {
      generations.set(`s${seq}`, await register(seq));
      // Heartbeat from the moment it is registered, as an agent does.
      setInterval(() => void beat(seq), 500);
    }
  }),
);
process.stdout.write(`${JSON.stringify({ registered: Object.fromEntries(generations) })}\n`);
for await (const line of createInterface({ input: process.stdin })) {
  if (line === "stats") process.stdout.write(`${JSON.stringify(stats)}\n`);
  if (line === "stop") process.exit(0);
}
process.exit(0);
