/**
 * Write load on a coordinator group for the operations tests, and the check
 * that what it acknowledged is still there: meetings created through
 * GetRoute(create) by a few loops here, checkpoints saved by real agents
 * (AgentFleet) with self-describing states.
 */
import { createHash } from "node:crypto";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { loadProto, lookup } from "../../src/wire/proto.js";
import { counterOf } from "./meeting-state.js";
import { newestSaves, type SavedEvent } from "./agent-fleet.js";
import { unary } from "./member-cluster.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const CoordinatorClient = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.Coordinator");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function coordinatorClient(address: string): grpc.Client {
  return new CoordinatorClient(address, grpc.credentials.createInsecure(), { "grpc.initial_reconnect_backoff_ms": 100, "grpc.max_reconnect_backoff_ms": 200 });
}

/** Creates meetings (GetRoute create=true) from `writers` loops, each call to the next of `targets()`, until stopped or `max` are acknowledged. */
export class CreateLoad {
  /** Meeting id → when its creation was acknowledged (Date.now()). */
  readonly acked = new Map<string, number>();
  failures = 0;
  private running = true;
  private paused = false;
  private seq = 0;
  private readonly loops: Promise<void>[] = [];
  private readonly clients = new Map<string, grpc.Client>();

  constructor(
    private readonly targets: () => readonly string[],
    private readonly prefix: string,
    writers = 3,
    private readonly max = 5_000,
    private readonly pauseMs = 10,
  ) {
    for (let w = 0; w < writers; w++) this.loops.push(this.loop());
  }

  private client(address: string): grpc.Client {
    let c = this.clients.get(address);
    if (!c) this.clients.set(address, (c = coordinatorClient(address)));
    return c;
  }

  private async loop(): Promise<void> {
    while (this.running && this.acked.size < this.max) {
      let targets: readonly string[];
      try {
        targets = this.targets();
      } catch {
        return; // the cluster is gone (a failed test tearing down)
      }
      if (targets.length === 0 || this.paused) {
        await sleep(50);
        continue;
      }
      const n = ++this.seq;
      const meetingId = `${this.prefix}-${n}`;
      try {
        await unary(this.client(targets[n % targets.length]!), "GetRoute", { meeting_id: meetingId, create: true, region: "" }, 2_000);
        this.acked.set(meetingId, Date.now());
      } catch {
        // Outcome unknown: it may exist; it is not counted as acknowledged.
        this.failures++;
        await sleep(50);
      }
      await sleep(this.pauseMs);
    }
  }

  /** No new creates until resume() (calls in flight finish). */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  /** Waits until at least `count` creates are acknowledged (or `timeoutMs` passes: then throws). */
  async until(count: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.acked.size < count) {
      if (Date.now() > deadline) throw new Error(`only ${this.acked.size} creates acknowledged within ${timeoutMs} ms (${this.failures} failed)`);
      await sleep(50);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    for (const c of this.clients.values()) c.close();
  }
}

interface CheckpointMessage {
  meeting_id: string;
  sequence: number;
  state: Buffer;
}

/**
 * What is missing of the acknowledged writes (acknowledged before `cutoffMs`):
 * one line per problem, none when every meeting exists and every meeting's
 * checkpoint is the newest acknowledged one, byte for byte, or a newer valid one.
 */
export async function missingAcknowledged(
  coordinator: grpc.Client,
  creates: ReadonlyMap<string, number>,
  saves: readonly SavedEvent[],
  cutoffMs = Infinity,
): Promise<string[]> {
  const problems: string[] = [];
  const created = [...creates].filter(([, at]) => at < cutoffMs).map(([id]) => id);
  for (const meetingId of created) {
    try {
      await unary(coordinator, "GetRoute", { meeting_id: meetingId, create: false, region: "" }, 5_000);
    } catch (err) {
      problems.push(`meeting ${meetingId}: ${(err as grpc.ServiceError).details ?? String(err)}`);
    }
  }
  for (const [meetingId, save] of newestSaves(saves, cutoffMs)) {
    let c: CheckpointMessage;
    try {
      c = await unary<CheckpointMessage>(coordinator, "GetCheckpoint", { meeting_id: meetingId }, 5_000);
    } catch (err) {
      problems.push(`checkpoint of ${meetingId} (acknowledged sequence ${save.sequence}): ${(err as grpc.ServiceError).details ?? String(err)}`);
      continue;
    }
    if (c.sequence < save.sequence) problems.push(`checkpoint of ${meetingId}: sequence ${c.sequence}, but ${save.sequence} was acknowledged`);
    else if (c.sequence === save.sequence && createHash("sha256").update(c.state).digest("hex") !== save.sha256) {
      problems.push(`checkpoint of ${meetingId}: sequence ${c.sequence} holds other bytes than the acknowledged save`);
    } else if (counterOf(c.state, meetingId) === undefined) problems.push(`checkpoint of ${meetingId}: sequence ${c.sequence} holds bytes no agent saved`);
  }
  return problems;
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `convene ARGS` (from the sources, or `cli` of another build) to its end. */
export function runConvene(args: readonly string[], options: { cli?: readonly string[]; cwd?: string; timeoutMs?: number } = {}): Promise<Run> {
  const cli = options.cli ?? ["--import", "tsx", "src/cli.ts"];
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.CONVENE_TOKEN;
    delete env.CONVENE_COORDINATORS;
    const child = spawn(process.execPath, [...cli, ...args], { cwd: options.cwd ?? root, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
