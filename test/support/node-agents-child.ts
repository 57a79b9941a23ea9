/**
 * Real NodeAgents (the library a meeting server embeds) in a process of
 * their own, for tests whose point is that the agents stay alive: a stall
 * of the test's process must not make them late for their heartbeats.
 * Each holds what it is assigned and checkpoints "s-<meeting id>".
 *
 * Run by NodeAgentsProcess (node-agents-process.ts), with an IPC channel:
 *   node --import tsx node-agents-child.ts '<json: AgentSpec[]>'
 * Sends "ready" once every agent has registered, a "report" of every
 * agent for each "report" asked, and "late" whenever its own event loop
 * was held up for more than 250 ms (it was starved).
 * Exits when its parent goes away.
 */
import { NodeAgent } from "../../src/node-agent/index.js";
import type { AgentReport, AgentSpec, AgentsChildMessage, AgentsCommand } from "./node-agents-process.js";

const send = (m: AgentsChildMessage): void => {
  process.send?.(m);
};

const specs = JSON.parse(process.argv[2] ?? "[]") as AgentSpec[];
const agents: { agent: NodeAgent; report: Omit<AgentReport, "generation" | "coordinatorAddress" | "meetings"> }[] = [];

process.on("disconnect", () => process.exit(0));
process.on("message", (c: AgentsCommand) => {
  if (c.cmd === "report") {
    const reports = agents.map(({ agent, report }) => ({
      ...report,
      generation: agent.generation,
      coordinatorAddress: agent.coordinatorAddress,
      meetings: [...agent.meetings().keys()].sort(),
    }));
    send({ kind: "report", id: c.id, agents: reports });
  }
});

let last = performance.now();
setInterval(() => {
  const now = performance.now();
  if (now - last - 50 > 250) send({ kind: "late", gapMs: Math.round(now - last - 50) });
  last = now;
}, 50);

try {
  for (const s of specs) {
    const held = new Set<string>();
    const report = { nodeId: s.nodeId, revoked: [] as string[], heartbeatsAnsweredAtMs: [] as number[] };
    const agent = new NodeAgent({
      coordinators: s.coordinators,
      nodeId: s.nodeId,
      address: s.address,
      capacity: s.capacity,
      checkpointIntervalMs: s.checkpointIntervalMs,
      onAssigned: (meetingId) => void held.add(meetingId),
      onRevoked: (meetingId) => {
        held.delete(meetingId);
        report.revoked.push(meetingId);
      },
      getState: (meetingId) => (held.has(meetingId) ? Buffer.from(`s-${meetingId}`) : undefined),
    });
    agent.on("error", () => undefined);
    agent.on("heartbeat", () => report.heartbeatsAnsweredAtMs.push(Date.now()));
    await agent.start();
    agents.push({ agent, report });
  }
  send({ kind: "ready" });
} catch (err) {
  process.send?.({ kind: "failed", message: err instanceof Error ? err.message : String(err) } satisfies AgentsChildMessage, () => process.exit(1));
}
