/**
 * A minimal meeting server process for the failover benchmark: it embeds
 * the node agent, keeps each meeting's state as a small counter, and prints
 * one JSON line per assignment change so the benchmark can time when a new
 * owner holds a meeting with its checkpoint.
 *   node --import tsx scripts/bench/bench-meeting-server.ts NODE_ID PORT COORDINATORS
 */
import { NodeAgent } from "../../src/node-agent/index.js";

const [nodeId, port, coordinators] = process.argv.slice(2);
const states = new Map<string, number>();
const agent = new NodeAgent({
  coordinators: coordinators!.split(","),
  nodeId: nodeId!,
  address: `127.0.0.1:${port}`,
  capacity: 1000,
  checkpointIntervalMs: 200,
  onAssigned: (meetingId, epoch, checkpoint) => {
    states.set(meetingId, checkpoint ? Number(Buffer.from(checkpoint.state).toString()) : 0);
    console.log(JSON.stringify({ ev: "assigned", meetingId, epoch, checkpoint: checkpoint ? Buffer.from(checkpoint.state).toString() : null, at: Date.now() }));
  },
  onRevoked: (meetingId) => {
    states.delete(meetingId);
  },
  getState: (meetingId) => {
    const n = (states.get(meetingId) ?? 0) + 1;
    states.set(meetingId, n);
    return Buffer.from(String(n));
  },
});
agent.on("error", () => undefined);
agent.on("registered", (info) => console.log(JSON.stringify({ ev: "registered", generation: info.generation })));
await agent.start();
process.on("SIGTERM", () => void agent.stop({ deregister: false }).then(() => process.exit(0)));
