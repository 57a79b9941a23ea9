/**
 * Real NodeAgents in a child process (node-agents-child.ts), for tests
 * whose point is that the agents stay alive and keep their meetings: the
 * agents heartbeat on their own event loop, which no stall of the test's
 * process can delay, and the child says when it was starved itself.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export interface AgentSpec {
  readonly nodeId: string;
  readonly coordinators: readonly string[];
  readonly address: string;
  readonly capacity: number;
  readonly checkpointIntervalMs: number;
}

/** One agent as the child sees it when asked. */
export interface AgentReport {
  readonly nodeId: string;
  readonly generation: number;
  readonly coordinatorAddress: string;
  /** Held meeting ids, sorted. */
  readonly meetings: readonly string[];
  /** Every meeting onRevoked was called for, in order. */
  readonly revoked: readonly string[];
  /** When each heartbeat was answered (Date.now() of the child: the same clock as the test's). */
  readonly heartbeatsAnsweredAtMs: readonly number[];
}

export type AgentsChildMessage =
  | { kind: "ready" }
  | { kind: "report"; id: number; agents: AgentReport[] }
  | { kind: "late"; gapMs: number }
  | { kind: "failed"; message: string };

export type AgentsCommand = { cmd: "report"; id: number };

export class NodeAgentsProcess {
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, (agents: AgentReport[]) => void>();
  private readonly stalls: number[] = [];
  private output = "";
  private ready = false;
  private failure: string | undefined;
  private nextId = 1;

  private constructor(specs: readonly AgentSpec[]) {
    this.child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./node-agents-child.ts", import.meta.url)), JSON.stringify(specs)], {
      cwd: fileURLToPath(new URL("../../", import.meta.url)),
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    });
    this.child.stdout!.on("data", (b: Buffer) => (this.output += b.toString()));
    this.child.stderr!.on("data", (b: Buffer) => (this.output += b.toString()));
    this.child.on("message", (m: AgentsChildMessage) => {
      if (m.kind === "ready") this.ready = true;
      else if (m.kind === "failed") this.failure = m.message;
      else if (m.kind === "late") this.stalls.push(m.gapMs);
      else {
        this.pending.get(m.id)?.(m.agents);
        this.pending.delete(m.id);
      }
    });
  }

  /** Starts the agents and waits until every one has registered. */
  static async start(specs: readonly AgentSpec[], timeoutMs = 60_000): Promise<NodeAgentsProcess> {
    const agents = new NodeAgentsProcess(specs);
    const deadline = Date.now() + timeoutMs;
    while (!agents.ready) {
      if (agents.failure !== undefined || agents.child.exitCode !== null || Date.now() > deadline) {
        agents.kill();
        throw new Error(`the agents did not start: ${agents.failure ?? "no answer"}\n${agents.output}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return agents;
  }

  /** Every agent's state now, in the order they were given. */
  report(): Promise<AgentReport[]> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the agents did not report within 10 s\n${this.output}`)), 10_000);
      this.pending.set(id, (agents) => {
        clearTimeout(timer);
        resolve(agents);
      });
      this.child.send({ cmd: "report", id } satisfies AgentsCommand);
    });
  }

  /** "" when the child's event loop was never held up by more than 250 ms (half the coordinator's default heartbeat interval); else a sentence for a failing test. */
  starvation(): string {
    if (this.stalls.length === 0) return "";
    return `the agents' own process was starved: its event loop was held up ${this.stalls.length} times, at worst for ${Math.max(...this.stalls)} ms (the coordinator suspects a node silent for 1 s and declares it dead after 1.5 s)`;
  }

  /** Like kill -9 of the meeting servers. */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
  }
}
