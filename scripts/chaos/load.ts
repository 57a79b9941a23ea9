/**
 * The workload: a few client loops, each making one call at a time and
 * recording it in the History. Clients create meetings (Coordinator.GetRoute
 * with create, or a gateway's GET /route/{id}), look routes up through both
 * paths, send meeting traffic through the gateways (GET /meetings/{id}/op),
 * read checkpoints and end meetings. A client retries a call on another
 * member or gateway while its deadline allows; the record holds the whole
 * call, so retries are inside one operation's [call, ret].
 *
 * A meeting ends in two steps. First it retires: from then on it gets only
 * calls that cannot create it (GetRoute without create, GetCheckpoint).
 * Once RETIRE_QUIET_MS have passed since the last call that could create it
 * (GetRoute with create, anything through a gateway, which creates on a
 * miss), and nothing is in flight on it, it is ended. A create the client
 * gave up on (a deadline, a retry on another member) may still be applied
 * after the client moved on; the quiet period keeps such a late create from
 * racing the end. An ended meeting is never named again, so a route to it
 * after the end is a resurrection, not a re-creation.
 */
import { SeededRandom } from "../../src/raft/random.js";
import type { ChaosCluster } from "./cluster.js";
import type { CheckpointReadOp, EndOp, History, RouteOp, ServeOp } from "./history.js";
import { type CheckpointMessage, type RouteMessage, RpcError, Status, isTransient } from "./rpc.js";
import { writerOf } from "./server-log.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const GRPC_ATTEMPT_MS = 1500;
const OP_DEADLINE_MS = 4000;
const HTTP_ATTEMPT_MS = 4000;
/** Longer than any deadline a create can hide behind (a follower forwards for up to 5 s) plus a partition. */
export const RETIRE_QUIET_MS = 10_000;

export interface MeetingInfo {
  readonly id: string;
  /** Calls in flight on it. */
  busy: number;
  state: "creating" | "active" | "retiring" | "ending" | "ended" | "maybe-ended";
  /** When the last call that could create it was made. */
  lastCreateCapable: number;
}

export class Workload {
  readonly meetings = new Map<string, MeetingInfo>();
  private stopped = false;
  private loops: Promise<void>[] = [];
  private created = 0;

  constructor(
    private readonly cluster: ChaosCluster,
    private readonly history: History,
    private readonly seed: number,
  ) {}

  start(): void {
    for (let k = 0; k < this.cluster.options.clients; k++) this.loops.push(this.loop(k));
  }

  /** Lets every client finish its call in flight, then resolves. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }

  private inState(state: MeetingInfo["state"]): MeetingInfo[] {
    return [...this.meetings.values()].filter((m) => m.state === state);
  }

  private async loop(client: number): Promise<void> {
    const random = new SeededRandom((this.seed * 7919 + client * 104729) >>> 0);
    let creating: MeetingInfo | undefined;
    while (!this.stopped) {
      const active = this.inState("active");
      const retiring = this.inState("retiring");
      const target = this.cluster.options.meetings;
      const now = Date.now();
      const due = retiring.find((m) => now - m.lastCreateCapable >= RETIRE_QUIET_MS);
      if (creating || active.length < target / 2 || (active.length < target && random.chance(0.25))) {
        creating ??= this.newMeeting(client);
        if (await this.create(client, creating, random)) creating = undefined;
      } else if (due) {
        // Marked in this tick: no other client starts a call on it from now on.
        await this.end(client, due);
      } else {
        // Picking and counting happen in one tick: an end never races a call it has not seen.
        const m = retiring.length > 0 && (active.length === 0 || random.chance(0.2)) ? random.pick(retiring) : random.pick(active);
        const roll = random.next();
        if (m.state === "active" && roll >= 0.97 && active.length >= target * 0.75) {
          m.state = "retiring";
        } else {
          m.busy += 1;
          try {
            if (m.state === "retiring") await (roll < 0.5 ? this.routeGrpc(client, m.id, false) : this.readCheckpoint(client, m.id));
            else if (roll < 0.25) await this.routeGrpc(client, m.id, false);
            else if (roll < 0.45) await this.routeGateway(client, m.id, random);
            else if (roll < 0.8) await this.serve(client, m.id, random);
            else await this.readCheckpoint(client, m.id);
          } finally {
            m.busy -= 1;
          }
        }
      }
      await sleep(10 + random.intBelow(30));
    }
  }

  /** A call that could create the meeting starts now. */
  private touched(meetingId: string): void {
    const m = this.meetings.get(meetingId);
    if (m) m.lastCreateCapable = Date.now();
  }

  private newMeeting(client: number): MeetingInfo {
    const m: MeetingInfo = { id: `s${this.seed}-c${client}-${++this.created}`, busy: 0, state: "creating", lastCreateCapable: Date.now() };
    this.meetings.set(m.id, m);
    return m;
  }

  /** Creates through a member or a gateway; true once acknowledged. */
  private async create(client: number, m: MeetingInfo, random: SeededRandom): Promise<boolean> {
    const op = random.chance(0.5) ? await this.routeGrpc(client, m.id, true) : await this.routeGateway(client, m.id, random);
    if (op.route) m.state = "active";
    return op.route !== undefined;
  }

  /** Coordinator.GetRoute on one member after another until one answers (or the deadline). */
  async routeGrpc(client: number, meetingId: string, create: boolean): Promise<RouteOp> {
    if (create) this.touched(meetingId);
    const op = this.history.add<RouteOp>({ kind: "route", client, via: "grpc", meetingId, create, call: Date.now() });
    try {
      const res = await this.anyMember<RouteMessage>("GetRoute", { meeting_id: meetingId, create, region: "" });
      op.route = { nodeId: res.node_id, epoch: res.epoch, created: res.created };
      op.ret = Date.now();
    } catch (err) {
      if (err instanceof RpcError && err.status === Status.NOT_FOUND) {
        op.notFound = true;
        op.ret = Date.now();
      } else {
        op.error = err instanceof Error ? err.message.slice(0, 200) : String(err);
      }
    }
    return op;
  }

  private async anyMember<T>(method: string, request: unknown): Promise<T> {
    const addresses = this.cluster.coordinatorAddresses();
    const start = Date.now();
    let i = Math.floor(Math.random() * addresses.length);
    for (;;) {
      const left = OP_DEADLINE_MS - (Date.now() - start);
      try {
        return await this.cluster.rpc.call<T>("Coordinator", addresses[i % addresses.length]!, method, request, Math.max(50, Math.min(GRPC_ATTEMPT_MS, left)));
      } catch (err) {
        if (!(err instanceof RpcError) || !isTransient(err.status) || Date.now() - start >= OP_DEADLINE_MS - 50) throw err;
        i += 1;
      }
    }
  }

  private gatewayOrder(random: SeededRandom): number[] {
    const n = this.cluster.gateways.length;
    const first = random.intBelow(n);
    return Array.from({ length: n }, (_, i) => (first + i) % n);
  }

  /** GET /route/{id} on a gateway (the next one if it cannot be reached). */
  async routeGateway(client: number, meetingId: string, random: SeededRandom): Promise<RouteOp> {
    this.touched(meetingId);
    let op: RouteOp | undefined;
    for (const gi of this.gatewayOrder(random)) {
      const g = this.cluster.gateways[gi]!;
      const instance = this.cluster.gatewayInstance(g);
      op = this.history.add<RouteOp>({ kind: "route", client, via: "gateway", gateway: instance, meetingId, create: true, call: Date.now() });
      try {
        const res = await fetch(`http://${g.address}/route/${meetingId}`, { signal: AbortSignal.timeout(HTTP_ATTEMPT_MS) });
        const body = (await res.json()) as { nodeId?: string; epoch?: number; error?: string };
        op.ret = Date.now();
        if (this.cluster.gatewayInstance(g) !== instance) delete (op as { gateway?: string }).gateway;
        if (res.status === 200 && typeof body.nodeId === "string" && typeof body.epoch === "number") {
          op.route = { nodeId: body.nodeId, epoch: body.epoch };
          return op;
        }
        op.error = `HTTP ${res.status} ${body.error ?? ""}`;
        if (res.status === 404) op.notFound = true;
        return op;
      } catch (err) {
        // Refused (gateway down): the request never arrived; a timeout leaves the outcome unknown.
        op.error = describe(err);
        if (isRefused(err)) op.ret = Date.now();
      }
    }
    return op!;
  }

  /** GET /meetings/{id}/op through a gateway: the server that answers says who it is and under which epoch. */
  private async serve(client: number, meetingId: string, random: SeededRandom): Promise<void> {
    this.touched(meetingId);
    for (const gi of this.gatewayOrder(random)) {
      const g = this.cluster.gateways[gi]!;
      const op = this.history.add<ServeOp>({ kind: "serve", client, gateway: this.cluster.gatewayInstance(g), meetingId, call: Date.now() });
      try {
        const res = await fetch(`http://${g.address}/meetings/${meetingId}/op?c=${client}`, { signal: AbortSignal.timeout(HTTP_ATTEMPT_MS) });
        const body = (await res.json()) as { nodeId?: string; epoch?: number; generation?: number; counter?: number };
        op.ret = Date.now();
        op.status = res.status;
        op.headerNode = res.headers.get("x-convene-node") ?? undefined;
        if (res.status === 200 && typeof body.nodeId === "string" && typeof body.epoch === "number") {
          op.served = { nodeId: body.nodeId, epoch: body.epoch, generation: body.generation ?? 0, counter: body.counter ?? 0 };
        }
        return;
      } catch (err) {
        op.error = describe(err);
        if (!isRefused(err)) return;
        op.ret = Date.now();
      }
    }
  }

  async readCheckpoint(client: number, meetingId: string): Promise<CheckpointReadOp> {
    const op = this.history.add<CheckpointReadOp>({ kind: "checkpoint", client, meetingId, call: Date.now() });
    try {
      const cp = await this.anyMember<CheckpointMessage>("GetCheckpoint", { meeting_id: meetingId });
      op.checkpoint = { epoch: cp.epoch, seq: cp.sequence, nodeId: cp.node_id, w: writerOf(cp.state) };
      op.ret = Date.now();
    } catch (err) {
      if (err instanceof RpcError && err.status === Status.NOT_FOUND) {
        op.checkpoint = null;
        op.ret = Date.now();
      } else {
        op.error = err instanceof Error ? err.message.slice(0, 200) : String(err);
      }
    }
    return op;
  }

  /** Ends a meeting once nothing else is in flight on it. */
  private async end(client: number, m: MeetingInfo): Promise<void> {
    m.state = "ending";
    for (let i = 0; i < 200 && m.busy > 0; i++) await sleep(25);
    const op = this.history.add<EndOp>({ kind: "end", client, meetingId: m.id, call: Date.now() });
    try {
      await this.anyMember("EndMeeting", { meeting_id: m.id });
      op.result = "ok";
      op.ret = Date.now();
      m.state = "ended";
    } catch (err) {
      if (err instanceof RpcError && err.status === Status.NOT_FOUND) {
        op.result = "not-found";
        op.ret = Date.now();
        m.state = "ended";
      } else {
        op.error = err instanceof Error ? err.message.slice(0, 200) : String(err);
        m.state = "maybe-ended";
      }
    }
  }
}

function describe(err: unknown): string {
  const cause = (err as { cause?: { code?: string } }).cause;
  return cause?.code ?? (err instanceof Error ? err.name : String(err));
}

function isRefused(err: unknown): boolean {
  return (err as { cause?: { code?: string } }).cause?.code === "ECONNREFUSED";
}
