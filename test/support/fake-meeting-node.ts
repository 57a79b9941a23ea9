/**
 * A meeting server as the coordinator sees it, played by raw gRPC calls:
 * Register, a heartbeat every half interval the coordinator asks for, and
 * an open WatchAssignments stream (so it is alive and holds meetings), or
 * none of them after Register (so it is declared dead).
 *
 * A fake that runs in the test's own process is only as punctual as that
 * process: on a loaded machine the test stalls for a second now and then,
 * its heartbeats are late, and the coordinator rightly declares the fake
 * dead. A test that needs a server to stay alive runs its fakes in a child
 * process of their own (FakeMeetingNodes, fake-meeting-nodes-child.ts),
 * which also tells when it was starved itself, so a failure can say so.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { loadProto, lookup } from "../../src/wire/proto.js";
import { unary } from "./member-cluster.js";

const NodeAgentClient = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.NodeAgent");

/** An event of the node's WatchAssignments stream (1 ASSIGNED, 2 REVOKED). */
export interface AssignmentEvent {
  readonly type: number;
  readonly meeting_id: string;
  readonly epoch: number;
  readonly checkpoint?: { readonly sequence: number; readonly state: Uint8Array; readonly node_id: string; readonly epoch: number } | null;
}

/** The meetings a stream of events leaves the node holding, by epoch: a REVOKED ends only the tenure it names. */
export function heldBy(events: readonly AssignmentEvent[]): Map<string, number> {
  const held = new Map<string, number>();
  for (const e of events) {
    if (e.type === 1) held.set(e.meeting_id, e.epoch);
    else if (held.get(e.meeting_id) === e.epoch) held.delete(e.meeting_id);
  }
  return held;
}

/** What a fake tells about itself besides its events. */
export interface FakeNodeObserver {
  onEvent?(event: AssignmentEvent): void;
  /** A heartbeat left `gapMs` after the one before: this process was starved (it sends every half interval). */
  onLate?(gapMs: number): void;
  /** The coordinator refused a heartbeat: the node was declared dead or fenced. */
  onRefused?(details: string): void;
  /** A heartbeat was just sent. */
  onBeat?(): void;
}

/** Register is retried on these (no leader for a moment, a member restarting): a real agent does the same. */
const RETRYABLE = new Set([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]);

export class FakeMeetingNode {
  generation = 0;
  heartbeatIntervalMs = 0;
  leaseTtlMs = 0;
  readonly client: grpc.Client;
  readonly events: AssignmentEvent[] = [];
  /** One token per fake: a Register sent again after a lost answer is the same registration (API.md, incarnation). */
  private readonly incarnation = randomUUID();
  private beat: NodeJS.Timeout | undefined;
  private watch: grpc.ClientReadableStream<AssignmentEvent> | undefined;
  private stopped = false;

  constructor(
    readonly nodeId: string,
    coordinator: string,
    private readonly port: number,
    private readonly capacity = 100,
    private readonly observer: FakeNodeObserver = {},
  ) {
    this.client = new NodeAgentClient(coordinator, grpc.credentials.createInsecure());
  }

  /** Meetings held now, by epoch. */
  held(): Map<string, number> {
    return heldBy(this.events);
  }

  /**
   * Registers (retrying while the coordinator has no leader, for up to
   * `timeoutMs`); with `alive`, heartbeats and watches from then on: twice
   * as often as asked, or with `exactInterval` exactly as often (the
   * slowest node that is still on time).
   */
  async start(alive: boolean, timeoutMs = 30_000, exactInterval = false): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let r: { generation: number; heartbeat_interval_ms: number; lease_ttl_ms: number };
    for (;;) {
      try {
        r = await unary(this.client, "Register", {
          node_id: this.nodeId, address: `127.0.0.1:${this.port}`, capacity: this.capacity, region: "", labels: {}, incarnation: this.incarnation,
        }, 5_000);
        break;
      } catch (err) {
        const code = (err as grpc.ServiceError).code;
        if (!RETRYABLE.has(code) || Date.now() > deadline) throw err;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    this.generation = r.generation;
    this.heartbeatIntervalMs = r.heartbeat_interval_ms;
    this.leaseTtlMs = r.lease_ttl_ms;
    if (!alive) return;
    // Twice as often as asked, unless told otherwise: a heartbeat that is a
    // little late, or lost in a leader change, must not make the node look
    // silent.
    const period = exactInterval ? r.heartbeat_interval_ms : Math.max(50, Math.floor(r.heartbeat_interval_ms / 2));
    let last = performance.now();
    this.beat = setInterval(() => {
      const now = performance.now();
      if (now - last > period + 250) this.observer.onLate?.(Math.round(now - last));
      last = now;
      this.observer.onBeat?.();
      unary(this.client, "Heartbeat", { node_id: this.nodeId, generation: this.generation, active_meetings: this.held().size, load: 0 }, 2_000).catch(
        (err: grpc.ServiceError) => {
          if (err.code === grpc.status.FAILED_PRECONDITION || err.code === grpc.status.NOT_FOUND) this.observer.onRefused?.(err.details);
        },
      );
    }, period);
    const watch = (this.client as unknown as { WatchAssignments(req: unknown): grpc.ClientReadableStream<AssignmentEvent> }).WatchAssignments({
      node_id: this.nodeId,
      generation: this.generation,
    });
    watch.on("data", (e: AssignmentEvent) => {
      this.events.push(e);
      this.observer.onEvent?.(e);
    });
    watch.on("error", () => undefined);
    this.watch = watch;
  }

  /** Like kill -9 of its process, as the coordinator sees it: heartbeats stop, the stream breaks. */
  die(): void {
    this.stopped = true;
    clearInterval(this.beat);
    this.watch?.cancel();
  }

  get dead(): boolean {
    return this.stopped;
  }

  stop(): void {
    this.die();
    this.client.close();
  }
}

export interface FakeNodeSpec {
  readonly nodeId: string;
  /** The member it registers with, heartbeats to and watches on. */
  readonly coordinator: string;
  /** The port in the address it registers; with `http`, the port it listens on is used instead. */
  readonly port: number;
  readonly capacity: number;
  readonly alive: boolean;
  /** Serve HTTP and WebSocket as a meeting server does (fake-meeting-http.ts). */
  readonly http?: boolean;
  /** Heartbeat exactly every interval asked (the slowest node still on time), not twice as often. */
  readonly exactInterval?: boolean;
  /** Tell the parent of every heartbeat sent (FakeMeetingNodes.nextBeat). */
  readonly announceBeats?: boolean;
}

/** Messages from fake-meeting-nodes-child.ts. */
export type ChildMessage =
  | { kind: "registered"; nodeId: string; generation: number; port: number; heartbeatIntervalMs: number; leaseTtlMs: number }
  | { kind: "ready" }
  | { kind: "event"; nodeId: string; event: AssignmentEvent }
  | { kind: "late"; nodeId: string; gapMs: number }
  | { kind: "refused"; nodeId: string; details: string }
  | { kind: "beat"; nodeId: string }
  | { kind: "done"; id: number }
  | { kind: "failed"; message: string };

/** Commands to fake-meeting-nodes-child.ts. */
export type ChildCommand = { cmd: "die" | "closeHttp" | "resetThenStopServing"; nodeId: string; id: number };

/**
 * Several FakeMeetingNodes in a child process (fake-meeting-nodes-child.ts),
 * whose heartbeats no stall of the test's own process can delay. The child
 * reports every assignment event, every heartbeat it sent late (its own
 * process was starved) and every heartbeat the coordinator refused.
 */
export class FakeMeetingNodes {
  readonly generations = new Map<string, number>();
  /** The port each node registered (its HTTP port when it serves HTTP). */
  readonly ports = new Map<string, number>();
  private readonly eventsOf = new Map<string, AssignmentEvent[]>();
  private readonly late = new Map<string, number[]>();
  private readonly refused = new Map<string, string>();
  private readonly intervals = new Map<string, { heartbeatIntervalMs: number; leaseTtlMs: number }>();
  private readonly pending = new Map<number, () => void>();
  private readonly beatWaiters = new Map<string, (() => void)[]>();
  private readonly child: ChildProcess;
  private output = "";
  private ready = false;
  private failure: string | undefined;
  private nextId = 1;

  private constructor(specs: readonly FakeNodeSpec[]) {
    this.child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./fake-meeting-nodes-child.ts", import.meta.url)), JSON.stringify(specs)], {
      cwd: fileURLToPath(new URL("../../", import.meta.url)),
      stdio: ["ignore", "pipe", "pipe", "ipc"],
      serialization: "advanced",
    });
    this.child.stdout!.on("data", (b: Buffer) => (this.output += b.toString()));
    this.child.stderr!.on("data", (b: Buffer) => (this.output += b.toString()));
    this.child.on("message", (m: ChildMessage) => this.onMessage(m));
  }

  /** Starts them and waits until every one is registered. */
  static async start(specs: readonly FakeNodeSpec[], timeoutMs = 60_000): Promise<FakeMeetingNodes> {
    const nodes = new FakeMeetingNodes(specs);
    const deadline = Date.now() + timeoutMs;
    while (!nodes.ready) {
      if (nodes.failure !== undefined || nodes.child.exitCode !== null || Date.now() > deadline) {
        nodes.kill();
        throw new Error(`the fake meeting servers did not start: ${nodes.failure ?? "no answer"}\n${nodes.output}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return nodes;
  }

  private onMessage(m: ChildMessage): void {
    switch (m.kind) {
      case "registered":
        this.generations.set(m.nodeId, m.generation);
        this.ports.set(m.nodeId, m.port);
        this.intervals.set(m.nodeId, { heartbeatIntervalMs: m.heartbeatIntervalMs, leaseTtlMs: m.leaseTtlMs });
        break;
      case "ready":
        this.ready = true;
        break;
      case "event":
        this.events(m.nodeId).push(m.event);
        break;
      case "late":
        this.late.set(m.nodeId, [...(this.late.get(m.nodeId) ?? []), m.gapMs]);
        break;
      case "refused":
        if (!this.refused.has(m.nodeId)) this.refused.set(m.nodeId, m.details);
        break;
      case "beat":
        for (const wake of this.beatWaiters.get(m.nodeId) ?? []) wake();
        this.beatWaiters.delete(m.nodeId);
        break;
      case "done":
        this.pending.get(m.id)?.();
        this.pending.delete(m.id);
        break;
      case "failed":
        this.failure = m.message;
        break;
    }
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Every assignment event `nodeId` received, in order (the array grows as more arrive). */
  events(nodeId: string): AssignmentEvent[] {
    let list = this.eventsOf.get(nodeId);
    if (!list) this.eventsOf.set(nodeId, (list = []));
    return list;
  }

  held(nodeId: string): Map<string, number> {
    return heldBy(this.events(nodeId));
  }

  /** Resolves when `nodeId` (started with announceBeats) has just sent a heartbeat. */
  nextBeat(nodeId: string): Promise<void> {
    return new Promise((resolve) => this.beatWaiters.set(nodeId, [...(this.beatWaiters.get(nodeId) ?? []), resolve]));
  }

  /** Like kill -9 of that one server: heartbeats stop, its stream breaks, its HTTP side (if any) refuses connections. */
  die(nodeId: string): Promise<void> {
    return this.command("die", nodeId);
  }

  /** Its HTTP side stops (connections refused, open ones cut) while it goes on heartbeating and watching. */
  closeHttp(nodeId: string): Promise<void> {
    return this.command("closeHttp", nodeId);
  }

  /** Its HTTP side answers its next request by resetting the connection, and serves nothing from then on (its agent stays). */
  resetThenStopServing(nodeId: string): Promise<void> {
    return this.command("resetThenStopServing", nodeId);
  }

  private command(cmd: ChildCommand["cmd"], nodeId: string): Promise<void> {
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the fake meeting servers did not answer ${cmd} ${nodeId} within 10 s\n${this.output}`)), 10_000);
      this.pending.set(id, () => {
        clearTimeout(timer);
        resolve();
      });
      this.child.send({ cmd, nodeId, id } satisfies ChildCommand);
    });
  }

  /**
   * Why a fake may have looked dead for reasons of its own, or "" when
   * none: heartbeats its process sent late (it was starved: the
   * coordinator rightly suspects a node silent for two intervals and
   * declares it dead after its lease), and heartbeats the coordinator
   * refused. For the message of any assertion about a fake's liveness.
   */
  starvation(): string {
    const lines: string[] = [];
    for (const [nodeId, gaps] of this.late) {
      const t = this.intervals.get(nodeId);
      const worst = Math.max(...gaps);
      const verdict = t && worst > t.leaseTtlMs ? "longer than its lease: the coordinator was right to declare it dead" : t && worst > 2 * t.heartbeatIntervalMs ? "long enough to be suspected" : "short of any judgement";
      lines.push(`fake ${nodeId}'s own process was starved: ${gaps.length} heartbeat${gaps.length === 1 ? "" : "s"} sent late, the worst ${worst} ms after the one before (${verdict})`);
    }
    for (const [nodeId, details] of this.refused) lines.push(`fake ${nodeId}'s heartbeat was refused: ${details}`);
    return lines.join("\n");
  }

  /** Like kill -9 of all of them. */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
  }
}
