/**
 * Real node agents as meeting servers, in a child process of their own
 * (agent-fleet-child.ts), for the operations tests: what they registered
 * as, whether any had to register again, and every checkpoint save the
 * coordinator acknowledged (with a hash of the exact bytes saved).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { FleetEvent, FleetSpec } from "./agent-fleet-child.js";

export type SavedEvent = Extract<FleetEvent, { type: "saved" }>;

export class AgentFleet {
  readonly generations = new Map<string, number>();
  readonly reregistrations: Extract<FleetEvent, { type: "reregistered" }>[] = [];
  readonly saves: SavedEvent[] = [];
  private readonly child: ChildProcess;
  private output = "";
  private pending = "";
  private ready = false;

  private constructor(spec: FleetSpec) {
    this.child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./agent-fleet-child.ts", import.meta.url)), JSON.stringify(spec)], {
      cwd: fileURLToPath(new URL("../../", import.meta.url)),
      stdio: ["pipe", "pipe", "pipe"],
    });
    this.child.stdout!.on("data", (b: Buffer) => this.take(b.toString()));
    this.child.stderr!.on("data", (b: Buffer) => {
      this.output = (this.output + b.toString()).slice(-4000);
    });
    this.child.stdin!.on("error", () => undefined);
  }

  /** Starts the agents and waits until every one is registered. */
  static async start(spec: FleetSpec, timeoutMs = 30_000): Promise<AgentFleet> {
    const fleet = new AgentFleet(spec);
    const deadline = Date.now() + timeoutMs;
    while (!fleet.ready) {
      if (fleet.child.exitCode !== null || Date.now() > deadline) {
        fleet.kill();
        throw new Error(`the agent fleet did not start:\n${fleet.output}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return fleet;
  }

  private take(text: string): void {
    this.pending += text;
    const lines = this.pending.split("\n");
    this.pending = lines.pop()!;
    for (const line of lines) {
      if (line === "ready") {
        this.ready = true;
        continue;
      }
      if (!line.startsWith("{")) continue;
      const e = JSON.parse(line) as FleetEvent;
      if (e.type === "registered") this.generations.set(e.nodeId, e.generation);
      else if (e.type === "reregistered") {
        this.reregistrations.push(e);
        this.generations.set(e.nodeId, e.generation);
      } else if (e.type === "saved") this.saves.push(e);
    }
  }

  /** No more checkpoint saves (getState answers nothing); heartbeats and watches go on. */
  freeze(): void {
    this.child.stdin!.write("freeze\n");
  }

  thaw(): void {
    this.child.stdin!.write("thaw\n");
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Like kill -9 of every meeting server in it. */
  kill(): void {
    if (this.child.exitCode === null) this.child.kill("SIGKILL");
  }

  recentOutput(): string {
    return this.output;
  }
}

/**
 * The newest acknowledged save of each meeting among `saves` (acknowledged
 * before `beforeMs` when given): the checkpoint the coordinator must still hold,
 * or a newer one.
 */
export function newestSaves(saves: readonly SavedEvent[], beforeMs = Infinity): Map<string, SavedEvent> {
  const newest = new Map<string, SavedEvent>();
  for (const s of saves) {
    if (s.atMs >= beforeMs) continue;
    const known = newest.get(s.meetingId);
    if (!known || s.sequence > known.sequence) newest.set(s.meetingId, s);
  }
  return newest;
}
