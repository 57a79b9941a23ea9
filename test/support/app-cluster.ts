/**
 * For the end-to-end tests of issue 19: three real coordinator members,
 * one-shot `convene` commands run as processes, meeting servers as node
 * agents embedded in the test (each with a host that keeps a log of writes
 * per meeting and implements the hand-over), and raw WatchEvents streams.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { NEWEST_CLUSTER_VERSION } from "../../src/coordinator/formats.js";
import { NodeAgent, type AgentOptions, type Checkpoint, type LoadSample } from "../../src/node-agent/index.js";
import { loadProto, lookup } from "../../src/wire/proto.js";
import { MemberCluster, unary } from "./member-cluster.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const pkg = loadProto("convene.proto");
export const CoordinatorClient = lookup<grpc.ServiceClientConstructor>(pkg, "convene.v1.Coordinator");
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

export interface WireEvent {
  id: string;
  index: number;
  position: number;
  type: number;
  meeting_id: string;
  node_id: string;
  from_node_id: string;
  to_node_id: string;
  epoch: number;
  reason: number;
  checkpoint_sequence: number;
  final_checkpoint: boolean;
}

export const EVENT = { MEETING_CREATED: 1, MEETING_MOVE_STARTED: 2, MEETING_MOVED: 3, MEETING_ENDED: 4, NODE_REGISTERED: 5, NODE_DRAINING: 9, NODE_UNDRAINED: 10, NODE_DEREGISTERED: 11 } as const;
export const REASON = { NODE_DEAD: 1, DRAIN: 2, PLANNED_MOVE: 3, REBALANCE: 4, NODE_LEFT: 5, PLACED: 6 } as const;

/**
 * A meeting server's state as a test keeps it: each meeting is a list of
 * writes, checkpointed as "a|b|c". onHandover freezes the meeting (later
 * writes are refused, as a real host must) and returns its final state.
 */
export class TestHost {
  readonly writes = new Map<string, string[]>();
  readonly frozen = new Set<string>();
  readonly assigned: { meetingId: string; epoch: number; checkpoint: string | undefined }[] = [];
  /** When set, onHandover waits on it (a server that does not answer). */
  handoverGate: Promise<void> | undefined;

  callbacks(): Pick<AgentOptions, "onAssigned" | "onRevoked" | "getState" | "onHandover"> {
    return {
      onAssigned: (meetingId: string, epoch: number, checkpoint: Checkpoint | undefined) => {
        const restored = checkpoint ? Buffer.from(checkpoint.state).toString() : undefined;
        this.assigned.push({ meetingId, epoch, checkpoint: restored });
        this.writes.set(meetingId, restored ? restored.split("|").filter((w) => w !== "") : []);
        this.frozen.delete(meetingId);
      },
      onRevoked: (meetingId: string) => {
        this.writes.delete(meetingId);
        this.frozen.delete(meetingId);
      },
      getState: (meetingId: string) => {
        const w = this.writes.get(meetingId);
        return w ? Buffer.from(w.join("|")) : undefined;
      },
      onHandover: async (meetingId: string) => {
        this.frozen.add(meetingId);
        if (this.handoverGate) await this.handoverGate;
        return Buffer.from((this.writes.get(meetingId) ?? []).join("|"));
      },
    };
  }

  /** A write to a held meeting; false when refused (not held, or handed over). */
  write(meetingId: string, text: string): boolean {
    const w = this.writes.get(meetingId);
    if (!w || this.frozen.has(meetingId)) return false;
    w.push(text);
    return true;
  }
}

export class AppCluster {
  readonly members: MemberCluster;
  private readonly clients: grpc.Client[] = [];
  private readonly agents: NodeAgent[] = [];
  private nextPort = 40_000 + Math.floor(Math.random() * 10_000);

  constructor(extraArgs: readonly string[] = []) {
    this.members = new MemberCluster(["n1", "n2", "n3"], undefined, { app: "coordinator", extraArgs });
  }

  get addresses(): string[] {
    return [...this.members.addresses.values()];
  }

  async start(): Promise<void> {
    for (const id of ["n1", "n2", "n3"]) this.members.start(id);
    await this.members.waitForLeader(30_000);
    await this.members.waitForAll(30_000);
    // What these tests use needs it (cluster version 3); a group of this release raises it by itself.
    await this.members.waitForClusterVersion(NEWEST_CLUSTER_VERSION, 30_000);
  }

  /** A Coordinator client to one member (by id), forwarding to the leader as any caller would. */
  coordinator(memberId = "n2"): grpc.Client {
    const c = new CoordinatorClient(this.members.addresses.get(memberId)!, grpc.credentials.createInsecure());
    this.clients.push(c);
    return c;
  }

  call<T>(method: string, request: unknown, memberId = "n1", timeoutMs = 10_000): Promise<T> {
    const c = this.coordinator(memberId);
    return unary<T>(c, method, request, timeoutMs).finally(() => c.close());
  }

  /** `convene ARGS --coordinators <all three>` as a process; resolves with its exit and output. */
  cli(args: readonly string[], timeoutMs = 60_000): Promise<Run> {
    return runConvene([...args, "--coordinators", this.addresses.join(",")], timeoutMs);
  }

  /** A started node agent embedded here, with `host`'s callbacks; stopped by close(). */
  async agent(nodeId: string, host: TestHost, extra: Partial<AgentOptions> & { reportLoad?: () => LoadSample } = {}): Promise<NodeAgent> {
    const agent = new NodeAgent({
      coordinators: this.addresses,
      nodeId,
      address: `127.0.0.1:${this.nextPort++}`,
      capacity: 20,
      checkpointIntervalMs: 200,
      // Each call's deadline: a loaded test machine commits a checkpoint in more than the default second at times.
      rpcTimeoutMs: 5_000,
      ...host.callbacks(),
      ...extra,
    });
    agent.on("error", () => undefined);
    this.agents.push(agent);
    await agent.start();
    return agent;
  }

  /** Every event after `fromIndex` a member streams, as they come. */
  watchEvents(fromIndex: number, memberId = "n1"): { events: WireEvent[]; batches: { index: number; events: WireEvent[] }[]; status: Promise<grpc.StatusObject>; cancel: () => void } {
    const client = this.coordinator(memberId);
    const stream = (client as unknown as { WatchEvents(r: unknown): grpc.ClientReadableStream<{ index: number; events: WireEvent[] }> }).WatchEvents({ from_index: fromIndex });
    const events: WireEvent[] = [];
    const batches: { index: number; events: WireEvent[] }[] = [];
    stream.on("data", (b: { index: number; events: WireEvent[] }) => {
      batches.push(b);
      events.push(...b.events);
    });
    stream.on("error", () => undefined);
    const status = new Promise<grpc.StatusObject>((resolve) => stream.on("status", resolve));
    return { events, batches, status, cancel: () => stream.cancel() };
  }

  /** Every embedded agent leaves the cluster (deregisters), so placement sees only what a test starts next. */
  async leaveAll(): Promise<void> {
    await Promise.all(this.agents.splice(0).map((a) => a.stop({ deregister: true })));
  }

  async close(): Promise<void> {
    await Promise.all(this.agents.map((a) => a.stop().catch(() => undefined)));
    for (const c of this.clients) c.close();
    await this.members.close();
  }
}

export function runConvene(args: readonly string[], timeoutMs = 60_000): Promise<Run> {
  const env = { ...process.env };
  delete env.CONVENE_TOKEN;
  delete env.CONVENE_COORDINATORS;
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", ...args], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
