/**
 * Meeting servers on the real node agent (src/node-agent), several in one
 * process, for the operations tests: each registers, heartbeats, watches its
 * assignments and checkpoints every meeting it holds, exactly as a meeting
 * server embedding the agent does. A meeting's state is a counter that
 * grows with each save, self-describing (meeting id and counter), so a test
 * can check any stored checkpoint byte for byte.
 *
 * Run by AgentFleet (agent-fleet.ts):
 *   node --import tsx agent-fleet-child.ts '<json FleetSpec>'
 * Prints one JSON line per event (FleetEvent), "ready" once every agent
 * registered. Reads commands on stdin, one per line: "freeze" (getState
 * answers nothing: no more saves, heartbeats go on), "thaw".
 */
import { createHash } from "node:crypto";
import { NodeAgent } from "../../src/node-agent/index.js";
import { counterOf, meetingState } from "./meeting-state.js";

export interface FleetSpec {
  readonly coordinators: readonly string[];
  readonly nodes: readonly { readonly nodeId: string; readonly port: number; readonly capacity: number }[];
  readonly checkpointIntervalMs: number;
}

export type FleetEvent =
  | { type: "registered"; nodeId: string; generation: number }
  | { type: "reregistered"; nodeId: string; generation: number; previous: number; reason: string; atMs: number }
  | { type: "assigned"; nodeId: string; meetingId: string; epoch: number; sequence: number }
  | { type: "saved"; nodeId: string; meetingId: string; epoch: number; sequence: number; sha256: string; atMs: number };

function emit(e: FleetEvent | "ready"): void {
  process.stdout.write(`${typeof e === "string" ? e : JSON.stringify(e)}\n`);
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? "{}") as FleetSpec;
  let frozen = false;
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (text: string) => {
    for (const line of text.split("\n")) {
      if (line === "freeze") frozen = true;
      if (line === "thaw") frozen = false;
    }
  });
  for (const n of spec.nodes) {
    const counters = new Map<string, number>();
    /** What the latest getState returned per meeting: the agent saves one state of a meeting at a time, so a save's event is for it. */
    const lastState = new Map<string, Buffer>();
    const agent: NodeAgent = new NodeAgent({
      coordinators: spec.coordinators,
      nodeId: n.nodeId,
      address: `127.0.0.1:${n.port}`,
      capacity: n.capacity,
      checkpointIntervalMs: spec.checkpointIntervalMs,
      rpcTimeoutMs: 1_000,
      onAssigned: (meetingId, epoch, checkpoint) => {
        const restored = checkpoint ? counterOf(checkpoint.state, meetingId) : 0;
        counters.set(meetingId, restored ?? 0);
        emit({ type: "assigned", nodeId: n.nodeId, meetingId, epoch, sequence: checkpoint?.sequence ?? 0 });
      },
      onRevoked: (meetingId) => {
        counters.delete(meetingId);
        lastState.delete(meetingId);
      },
      getState: (meetingId) => {
        if (frozen) return undefined;
        const counter = (counters.get(meetingId) ?? 0) + 1;
        counters.set(meetingId, counter);
        const state = meetingState(meetingId, counter);
        lastState.set(meetingId, state);
        return state;
      },
    });
    agent.on("checkpoint", (c) => {
      const state = lastState.get(c.meetingId);
      if (!state) return;
      emit({ type: "saved", nodeId: n.nodeId, meetingId: c.meetingId, epoch: c.epoch, sequence: c.sequence, sha256: createHash("sha256").update(state).digest("hex"), atMs: Date.now() });
    });
    agent.on("reregistered", (r) => emit({ type: "reregistered", nodeId: n.nodeId, generation: r.generation, previous: r.previousGeneration, reason: r.reason, atMs: Date.now() }));
    agent.on("error", () => undefined);
    await agent.start();
    emit({ type: "registered", nodeId: n.nodeId, generation: agent.generation });
  }
  emit("ready");
}

main().catch((err: unknown) => {
  process.stderr.write(`agent fleet failed: ${String(err)}\n`);
  process.exit(1);
});
