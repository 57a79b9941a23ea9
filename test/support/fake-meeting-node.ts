/**
 * A meeting server as the coordinator sees it, played by raw gRPC calls:
 * Register, a heartbeat every interval the coordinator asks for, and an
 * open WatchAssignments stream (so it is alive and holds meetings), or
 * none of them after Register (so it is declared dead). FakeMeetingNodes
 * runs several in a child process.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { loadProto, lookup } from "../../src/wire/proto.js";
import { unary } from "./member-cluster.js";

const NodeAgentClient = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.NodeAgent");

export class FakeMeetingNode {
  generation = 0;
  readonly client: grpc.Client;
  private beat: NodeJS.Timeout | undefined;
  private watch: grpc.ClientReadableStream<unknown> | undefined;

  constructor(
    readonly nodeId: string,
    coordinator: string,
    private readonly port: number,
    private readonly capacity = 100,
  ) {
    this.client = new NodeAgentClient(coordinator, grpc.credentials.createInsecure());
  }

  /** Registers; with `alive`, heartbeats and watches its assignments from then on. */
  async start(alive: boolean): Promise<void> {
    const r = await unary<{ generation: number; heartbeat_interval_ms: number }>(this.client, "Register", {
      node_id: this.nodeId,
      address: `127.0.0.1:${this.port}`,
      capacity: this.capacity,
      region: "",
      labels: {},
    }, 10_000);
    this.generation = r.generation;
    if (!alive) return;
    const beat = (): void => {
      unary(this.client, "Heartbeat", { node_id: this.nodeId, generation: this.generation, active_meetings: 0, load: 0 }, 2_000).catch(() => undefined);
    };
    // Somewhat more often than asked: a loaded test machine must not make it miss its lease.
    this.beat = setInterval(beat, Math.max(50, Math.floor(r.heartbeat_interval_ms / 2)));
    const watch = (this.client as unknown as { WatchAssignments(req: unknown): grpc.ClientReadableStream<unknown> }).WatchAssignments({
      node_id: this.nodeId,
      generation: this.generation,
    });
    watch.on("data", () => undefined);
    watch.on("error", () => undefined);
    this.watch = watch;
  }

  stop(): void {
    clearInterval(this.beat);
    this.watch?.cancel();
    this.client.close();
  }
}

/** Several FakeMeetingNodes in a child process (fake-meeting-nodes-child.ts), whose heartbeats no stall of the test's own process can delay. */
export class FakeMeetingNodes {
  readonly generations = new Map<string, number>();
  private readonly child: ChildProcess;
  private output = "";

  private constructor(specs: readonly { nodeId: string; coordinator: string; port: number; capacity: number; alive: boolean }[]) {
    this.child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./fake-meeting-nodes-child.ts", import.meta.url)), JSON.stringify(specs)], {
      cwd: fileURLToPath(new URL("../../", import.meta.url)),
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child.stdout!.on("data", (b: Buffer) => (this.output += b.toString()));
    this.child.stderr!.on("data", (b: Buffer) => (this.output += b.toString()));
  }

  /** Starts them and waits until every one is registered. */
  static async start(specs: readonly { nodeId: string; coordinator: string; port: number; capacity: number; alive: boolean }[], timeoutMs = 30_000): Promise<FakeMeetingNodes> {
    const nodes = new FakeMeetingNodes(specs);
    const deadline = Date.now() + timeoutMs;
    while (!nodes.output.includes("ready\n")) {
      if (nodes.child.exitCode !== null || Date.now() > deadline) {
        nodes.kill();
        throw new Error(`the fake meeting servers did not start:\n${nodes.output}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const line of nodes.output.split("\n")) {
      if (!line.startsWith("{")) continue;
      const { nodeId, generation } = JSON.parse(line) as { nodeId: string; generation: number };
      nodes.generations.set(nodeId, generation);
    }
    return nodes;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Like kill -9: heartbeats stop, streams break. */
  kill(): void {
    if (this.child.exitCode === null) this.child.kill("SIGKILL");
  }
}
