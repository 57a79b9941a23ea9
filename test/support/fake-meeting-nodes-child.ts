/**
 * Meeting servers as the coordinator sees them (FakeMeetingNode), in a
 * process of their own: a test that fuzzes the members works its own event
 * loop hard (huge requests, thousands of calls), and heartbeats sent from
 * there could fall late enough to have these nodes declared dead, which
 * would move their meetings in the middle of a "nothing changes" check.
 *
 * Run by FakeMeetingNodes (fake-meeting-node.ts):
 *   node --import tsx fake-meeting-nodes-child.ts '<json: [{nodeId, coordinator, port, capacity, alive}]>'
 * Prints one JSON line per node once registered ({nodeId, generation}),
 * then "ready"; heartbeats until killed.
 */
import { FakeMeetingNode } from "./fake-meeting-node.js";

interface Spec {
  nodeId: string;
  coordinator: string;
  port: number;
  capacity: number;
  alive: boolean;
}

const specs = JSON.parse(process.argv[2] ?? "[]") as Spec[];
for (const s of specs) {
  const node = new FakeMeetingNode(s.nodeId, s.coordinator, s.port, s.capacity);
  await node.start(s.alive);
  process.stdout.write(`${JSON.stringify({ nodeId: s.nodeId, generation: node.generation })}\n`);
}
process.stdout.write("ready\n");
