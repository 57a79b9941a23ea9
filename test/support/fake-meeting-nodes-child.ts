/**
 * Meeting servers as the coordinator sees them (FakeMeetingNode, with an
 * HTTP face when asked), in a process of their own: a test works its own
 * event loop hard (huge requests, thousands of calls, a loaded machine),
 * and heartbeats sent from there could fall late enough to have these
 * nodes declared dead, which would move their meetings in the middle of a
 * check.
 *
 * Run by FakeMeetingNodes (fake-meeting-node.ts), with an IPC channel:
 *   node --import tsx fake-meeting-nodes-child.ts '<json: FakeNodeSpec[]>'
 * Sends "registered" per node, then "ready"; then every assignment event,
 * every heartbeat it sent late and every heartbeat refused (and every
 * heartbeat, when asked); obeys "die", "closeHttp" and
 * "resetThenStopServing". Exits when its parent goes away.
 */
import { type ChildCommand, type ChildMessage, FakeMeetingNode, type FakeNodeSpec } from "./fake-meeting-node.js";
import { FakeMeetingHttp } from "./fake-meeting-http.js";

const send = (m: ChildMessage): void => {
  process.send?.(m);
};

const specs = JSON.parse(process.argv[2] ?? "[]") as FakeNodeSpec[];
const nodes = new Map<string, { node: FakeMeetingNode; http: FakeMeetingHttp | undefined }>();

process.on("disconnect", () => process.exit(0));
process.on("message", (c: ChildCommand) => {
  const entry = nodes.get(c.nodeId);
  if (entry && c.cmd === "resetThenStopServing") entry.http?.resetThenClose();
  else if (entry) {
    entry.http?.close();
    if (c.cmd === "die") entry.node.die();
  }
  send({ kind: "done", id: c.id });
});

try {
  for (const s of specs) {
    let fake: FakeMeetingNode | undefined;
    const http = s.http ? new FakeMeetingHttp(s.nodeId, (meetingId) => fake?.held().has(meetingId) ?? false) : undefined;
    const port = http ? await http.listen() : s.port;
    fake = new FakeMeetingNode(s.nodeId, s.coordinator, port, s.capacity, {
      onEvent: (event) => send({ kind: "event", nodeId: s.nodeId, event }),
      onLate: (gapMs) => send({ kind: "late", nodeId: s.nodeId, gapMs }),
      onRefused: (details) => send({ kind: "refused", nodeId: s.nodeId, details }),
      ...(s.announceBeats ? { onBeat: () => send({ kind: "beat", nodeId: s.nodeId }) } : {}),
    });
    nodes.set(s.nodeId, { node: fake, http });
    await fake.start(s.alive, undefined, s.exactInterval);
    send({ kind: "registered", nodeId: s.nodeId, generation: fake.generation, port, heartbeatIntervalMs: fake.heartbeatIntervalMs, leaseTtlMs: fake.leaseTtlMs });
  }
  send({ kind: "ready" });
} catch (err) {
  process.send?.({ kind: "failed", message: err instanceof Error ? err.message : String(err) } satisfies ChildMessage, () => process.exit(1));
}
