/**
 * An in-memory, honest implementation of the NodeAgent service of API.md,
 * served by one or more in-process gRPC servers ("members") that share one
 * state, as the members of a real group share the replicated state. It
 * stands in for the real coordinator only in the node agent's unit tests:
 * no Raft, no liveness detector (the test declares nodes dead), no
 * placement (the test assigns meetings).
 *
 * What it keeps from the contract: generations grow on every Register of an
 * id (also across Deregister); Heartbeat/WatchAssignments answer NOT_FOUND
 * for an unknown node and FAILED_PRECONDITION for a stale generation or a
 * dead node; the watch first sends ASSIGNED for every meeting the node
 * holds (with its checkpoint), then each change; SaveCheckpoint is fenced
 * by generation, ownership, epoch and sequence (equal is idempotent);
 * Deregister moves the node's meetings away (here: unassigns them).
 * Every call is recorded, with the member that took it.
 */
import * as grpc from "@grpc/grpc-js";
import { loadProto, lookup } from "../../src/wire/proto.js";

const service = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.NodeAgent").service;
/** Only ListMeetings of the Coordinator service: the agent's linearizable check before it releases meetings. */
const coordinatorService = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.Coordinator").service;

const NODE_ID = /^[A-Za-z0-9._-]{1,64}$/;
const MEETING_ID = /^[A-Za-z0-9._:-]{1,128}$/;
export const ASSIGNED = 1;
export const REVOKED = 2;

export interface FakeNode {
  readonly id: string;
  address: string;
  capacity: number;
  generation: number;
  dead: boolean;
  draining: boolean;
  heartbeats: number;
  lastActiveMeetings: number;
  lastLoad: number;
}

export interface FakeMeeting {
  readonly id: string;
  /** "" while unassigned. */
  owner: string;
  epoch: number;
}

export interface FakeCheckpoint {
  meeting_id: string;
  node_id: string;
  epoch: number;
  sequence: number;
  state: Buffer;
  saved_at_ms: number;
}

export interface CallRecord {
  readonly member: number;
  readonly method: string;
  readonly request: any;
}

interface Watcher {
  readonly nodeId: string;
  readonly generation: number;
  readonly member: number;
  readonly call: grpc.ServerWritableStream<unknown, unknown>;
}

/** A scripted failure: a status, or "hang" (never answer: the caller's deadline expires, as with a frozen member). */
type FaultKind = grpc.status | "hang";

interface Fault {
  readonly method: string;
  readonly code: FaultKind;
  remaining: number;
}

interface Member {
  readonly server: grpc.Server;
  readonly address: string;
  stopped: boolean;
}

type Req = Record<string, unknown>;
type UnaryCallback = grpc.sendUnaryData<unknown>;

function status(code: grpc.status, details: string): Partial<grpc.StatusObject> {
  return { code, details };
}

export interface FakeOptions {
  readonly members?: number;
  readonly heartbeatIntervalMs?: number;
  readonly leaseTtlMs?: number;
  readonly maxCheckpointBytes?: number;
}

export class FakeCoordinator {
  readonly nodes = new Map<string, FakeNode>();
  readonly meetings = new Map<string, FakeMeeting>();
  readonly checkpoints = new Map<string, FakeCheckpoint>();
  readonly calls: CallRecord[] = [];
  private readonly generations = new Map<string, number>();
  private readonly watchers = new Set<Watcher>();
  private readonly faults: Fault[] = [];
  /**
   * Meetings left out of the list a new watch stream starts with, as a
   * member that has not yet applied their assignment would (see
   * `lagBehind`).
   */
  private readonly behind = new Set<string>();
  private readonly members: Member[] = [];
  readonly heartbeatIntervalMs: number;
  readonly leaseTtlMs: number;
  readonly maxCheckpointBytes: number;

  private constructor(options: FakeOptions) {
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? 50;
    this.leaseTtlMs = options.leaseTtlMs ?? 600;
    this.maxCheckpointBytes = options.maxCheckpointBytes ?? 256 * 1024;
  }

  static async start(options: FakeOptions = {}): Promise<FakeCoordinator> {
    const fake = new FakeCoordinator(options);
    for (let i = 0; i < (options.members ?? 2); i++) await fake.startMember(i);
    return fake;
  }

  get addresses(): string[] {
    return this.members.map((m) => m.address);
  }

  /** Calls of `method` (optionally only those one member took). */
  callsOf(method: string, member?: number): CallRecord[] {
    return this.calls.filter((c) => c.method === method && (member === undefined || c.member === member));
  }

  /** Open watch streams (optionally of one node). */
  openWatches(nodeId?: string): { nodeId: string; generation: number; member: number }[] {
    return [...this.watchers].filter((w) => nodeId === undefined || w.nodeId === nodeId).map(({ nodeId: n, generation, member }) => ({ nodeId: n, generation, member }));
  }

  /** New watch streams start without these meetings, like a member that is behind; `catchUp` sends them. */
  lagBehind(...meetingIds: string[]): void {
    for (const id of meetingIds) this.behind.add(id);
  }

  /** The lagging member applies what it missed: ASSIGNED for each hidden meeting, on every open stream of its owner. */
  catchUp(): void {
    for (const id of this.behind) {
      const m = this.meetings.get(id);
      if (m && m.owner !== "") this.send(m.owner, this.assignedEvent(m));
    }
    this.behind.clear();
  }

  /** The next `count` calls of `method` fail with `code` (or are never answered), on any member. */
  failNext(method: string, code: FaultKind, count = 1): void {
    this.faults.push({ method, code, remaining: count });
  }

  /** Registers a node with no agent behind it (a place to move meetings to). */
  addNode(id: string, address = "127.0.0.1:1"): FakeNode {
    return this.register({ node_id: id, address, capacity: 100 });
  }

  /** A checkpoint as if saved by an earlier owner. */
  putCheckpoint(meetingId: string, sequence: number, state: string | Uint8Array, nodeId = "earlier-owner"): void {
    const epoch = this.meetings.get(meetingId)?.epoch ?? 0;
    this.checkpoints.set(meetingId, { meeting_id: meetingId, node_id: nodeId, epoch, sequence, state: Buffer.from(state), saved_at_ms: Date.now() });
  }

  /**
   * Creates the meeting on `nodeId`, or moves it there: the epoch grows,
   * the old owner's streams get REVOKED and the new owner's ASSIGNED with
   * the checkpoint. With notify false the move is silent (a lost event).
   */
  assign(meetingId: string, nodeId: string, options: { notify?: boolean } = {}): number {
    const notify = options.notify ?? true;
    const meeting = this.meetings.get(meetingId) ?? { id: meetingId, owner: "", epoch: 0 };
    this.meetings.set(meetingId, meeting);
    const old = meeting.owner;
    if (old && notify) this.send(old, { type: REVOKED, meeting_id: meetingId, epoch: meeting.epoch });
    meeting.owner = nodeId;
    meeting.epoch += 1;
    if (notify) this.send(nodeId, this.assignedEvent(meeting));
    return meeting.epoch;
  }

  /** Ends a meeting: its owner's streams get REVOKED. */
  end(meetingId: string): void {
    const meeting = this.meetings.get(meetingId);
    if (!meeting) return;
    if (meeting.owner) this.send(meeting.owner, { type: REVOKED, meeting_id: meetingId, epoch: meeting.epoch });
    this.meetings.delete(meetingId);
  }

  /** What the liveness detector would do: the node is dead, its meetings unassigned. */
  declareDead(nodeId: string, options: { endWatches?: boolean } = {}): void {
    const node = this.nodes.get(nodeId);
    if (!node) throw new Error(`fake: no node ${nodeId}`);
    node.dead = true;
    for (const m of this.meetings.values()) if (m.owner === nodeId) m.owner = "";
    if (options.endWatches ?? true) this.endWatches(nodeId, grpc.status.FAILED_PRECONDITION, `node ${nodeId} was declared dead`);
  }

  /** Sends a raw message on every open stream of the node (for malformed-input tests). */
  sendRaw(nodeId: string, message: unknown): void {
    this.send(nodeId, message);
  }

  /** Ends the open watch streams (all, or one member's) with UNAVAILABLE, as a member that fails them would. */
  breakWatches(member?: number): void {
    for (const w of [...this.watchers]) {
      if (member !== undefined && w.member !== member) continue;
      this.watchers.delete(w);
      w.call.emit("error", status(grpc.status.UNAVAILABLE, "fake: watch broken"));
    }
  }

  /** Kills one member: its connections close at once, as with kill -9. */
  stopMember(member: number): void {
    const m = this.members[member]!;
    m.stopped = true;
    for (const w of [...this.watchers]) if (w.member === member) this.watchers.delete(w);
    m.server.forceShutdown();
  }

  async close(): Promise<void> {
    for (const w of this.watchers) w.call.end();
    this.watchers.clear();
    for (const m of this.members) if (!m.stopped) m.server.forceShutdown();
  }

  private async startMember(index: number): Promise<void> {
    const server = new grpc.Server();
    const record = (method: string, request: unknown): FaultKind | undefined => {
      this.calls.push({ member: index, method, request });
      const fault = this.faults.find((f) => f.method === method && f.remaining > 0);
      if (!fault) return undefined;
      fault.remaining -= 1;
      return fault.code;
    };
    const unary =
      (method: string, fn: (req: Req) => unknown) =>
      (call: grpc.ServerUnaryCall<Req, unknown>, cb: UnaryCallback): void => {
        const fault = record(method, call.request);
        if (fault === "hang") return;
        if (fault !== undefined) return cb(status(fault, `fake: scripted ${grpc.status[fault]}`));
        try {
          cb(null, fn(call.request));
        } catch (err) {
          cb(err as Partial<grpc.StatusObject>);
        }
      };
    server.addService(service, {
      Register: unary("Register", (req) => {
        const node = this.register(req);
        return { node_id: node.id, generation: node.generation, heartbeat_interval_ms: this.heartbeatIntervalMs, lease_ttl_ms: this.leaseTtlMs };
      }),
      Heartbeat: unary("Heartbeat", (req) => {
        const node = this.liveNode(req);
        node.heartbeats += 1;
        node.lastActiveMeetings = req["active_meetings"] as number;
        node.lastLoad = req["load"] as number;
        return { lease_ttl_ms: this.leaseTtlMs, draining: node.draining };
      }),
      SaveCheckpoint: unary("SaveCheckpoint", (req) => ({ sequence: this.saveCheckpoint(req) })),
      Deregister: unary("Deregister", (req) => {
        const node = this.liveNode(req, true);
        for (const m of this.meetings.values()) {
          if (m.owner !== node.id) continue;
          this.send(node.id, { type: REVOKED, meeting_id: m.id, epoch: m.epoch });
          m.owner = "";
        }
        this.endWatches(node.id, grpc.status.OK, "deregistered");
        this.nodes.delete(node.id);
        return {};
      }),
      WatchAssignments: (call: grpc.ServerWritableStream<Req, unknown>) => {
        const fault = record("WatchAssignments", call.request);
        if (fault === "hang") return;
        if (fault !== undefined) return void call.emit("error", status(fault, `fake: scripted ${grpc.status[fault]}`));
        let node: FakeNode;
        try {
          node = this.liveNode(call.request);
        } catch (err) {
          return void call.emit("error", err);
        }
        const watcher: Watcher = { nodeId: node.id, generation: node.generation, member: index, call: call as grpc.ServerWritableStream<unknown, unknown> };
        this.watchers.add(watcher);
        call.on("cancelled", () => this.watchers.delete(watcher));
        call.on("error", () => this.watchers.delete(watcher));
        for (const m of this.meetings.values()) if (m.owner === node.id && !this.behind.has(m.id)) call.write(this.assignedEvent(m));
      },
    });
    server.addService(coordinatorService, {
      ListMeetings: unary("ListMeetings", (req) => ({
        meetings: [...this.meetings.values()]
          .filter((m) => m.owner !== "" && (req["node_id"] === "" || m.owner === req["node_id"]))
          .map((m) => ({ meeting_id: m.id, node_id: m.owner, address: this.nodes.get(m.owner)?.address ?? "", epoch: m.epoch, created: false })),
      })),
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.members[index] = { server, address: `127.0.0.1:${port}`, stopped: false };
  }

  private register(req: Req): FakeNode {
    const id = req["node_id"];
    if (typeof id !== "string" || !NODE_ID.test(id)) throw status(grpc.status.INVALID_ARGUMENT, `node_id must match ${NODE_ID.source}`);
    if (typeof req["capacity"] !== "number" || req["capacity"] < 1) throw status(grpc.status.INVALID_ARGUMENT, "capacity must be > 0");
    if (typeof req["address"] !== "string" || req["address"] === "") throw status(grpc.status.INVALID_ARGUMENT, "address must be host:port");
    const generation = (this.generations.get(id) ?? 0) + 1;
    this.generations.set(id, generation);
    const existing = this.nodes.get(id);
    const node: FakeNode = existing ?? { id, address: "", capacity: 0, generation, dead: false, draining: false, heartbeats: 0, lastActiveMeetings: 0, lastLoad: 0 };
    node.address = req["address"];
    node.capacity = req["capacity"];
    node.generation = generation;
    node.dead = false;
    node.draining = false;
    this.nodes.set(id, node);
    // Streams of older incarnations are fenced out.
    for (const w of [...this.watchers]) {
      if (w.nodeId === id && w.generation !== generation) {
        this.watchers.delete(w);
        w.call.emit("error", status(grpc.status.FAILED_PRECONDITION, `generation ${w.generation} is stale`));
      }
    }
    return node;
  }

  /** The node of a Heartbeat/Watch/Deregister request, if known, at this generation and not dead. */
  private liveNode(req: Req, notFoundOnly = false): FakeNode {
    const id = req["node_id"] as string;
    const node = this.nodes.get(id);
    if (!node) throw status(grpc.status.NOT_FOUND, `node ${id} is not registered`);
    if (node.generation !== req["generation"]) {
      throw status(grpc.status.FAILED_PRECONDITION, `generation ${String(req["generation"])} is stale; node ${id} is at ${node.generation}`);
    }
    if (node.dead && !notFoundOnly) throw status(grpc.status.FAILED_PRECONDITION, `node ${id} was declared dead; it must register again`);
    return node;
  }

  private saveCheckpoint(req: Req): number {
    const state = req["state"] as Buffer;
    if (state.length > this.maxCheckpointBytes) throw status(grpc.status.RESOURCE_EXHAUSTED, `state is over ${this.maxCheckpointBytes} bytes`);
    const nodeId = req["node_id"] as string;
    const node = this.nodes.get(nodeId);
    if (!node || node.generation !== req["generation"] || node.dead) {
      throw status(grpc.status.FAILED_PRECONDITION, `node ${nodeId} generation ${String(req["generation"])} is not live`);
    }
    const meetingId = req["meeting_id"] as string;
    if (!MEETING_ID.test(meetingId)) throw status(grpc.status.INVALID_ARGUMENT, `meeting_id must match ${MEETING_ID.source}`);
    const meeting = this.meetings.get(meetingId);
    if (!meeting || meeting.owner !== nodeId || meeting.epoch !== req["epoch"]) {
      throw status(grpc.status.FAILED_PRECONDITION, `${nodeId} at epoch ${String(req["epoch"])} does not own ${meetingId}`);
    }
    const sequence = req["sequence"] as number;
    const stored = this.checkpoints.get(meetingId);
    if (stored && sequence < stored.sequence) throw status(grpc.status.FAILED_PRECONDITION, `sequence ${sequence} is lower than ${stored.sequence}`);
    if (stored && sequence === stored.sequence) {
      if (!Buffer.from(state).equals(stored.state)) throw status(grpc.status.FAILED_PRECONDITION, `sequence ${sequence} is already stored with different state`);
      return stored.sequence;
    }
    this.checkpoints.set(meetingId, { meeting_id: meetingId, node_id: nodeId, epoch: meeting.epoch, sequence, state: Buffer.from(state), saved_at_ms: Date.now() });
    return sequence;
  }

  private assignedEvent(m: FakeMeeting): unknown {
    return { type: ASSIGNED, meeting_id: m.id, epoch: m.epoch, checkpoint: this.checkpoints.get(m.id) ?? null };
  }

  private send(nodeId: string, message: unknown): void {
    for (const w of this.watchers) if (w.nodeId === nodeId) w.call.write(message);
  }

  private endWatches(nodeId: string, code: grpc.status, details: string): void {
    for (const w of [...this.watchers]) {
      if (w.nodeId !== nodeId) continue;
      this.watchers.delete(w);
      if (code === grpc.status.OK) w.call.end();
      else w.call.emit("error", status(code, details));
    }
  }
}
