/**
 * The parts of the coordinator's replicated state that a rejected request
 * could corrupt, in a form two snapshots can be compared by: nodes with
 * their generation, address, capacity, region and labels; meetings with
 * owner and epoch; checkpoints with sequence, owner, epoch and a hash of
 * the bytes. Liveness and load are left out on purpose: heartbeats move
 * them legitimately while a fuzz run goes on.
 *
 * Also each member's own applied route table (its route feed's first,
 * full batch), so a member that diverged from the others shows, and the
 * audit trail of applied commands, so a write that slipped through shows
 * even when a later one undid it.
 */
import { createHash } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import type { CoordinatorQueries } from "../../src/coordinator/state.js";
import { loadProto, lookup } from "../../src/wire/proto.js";
import { unary } from "./member-cluster.js";

const RouteFeed = lookup<grpc.ServiceClientConstructor>(loadProto("routes.proto"), "convene.routes.v1.RouteFeed");

interface NodeMessage {
  node_id: string;
  address: string;
  capacity: number;
  region: string;
  labels: Record<string, string>;
  generation: number;
}

interface RouteMessage {
  meeting_id: string;
  node_id: string;
  epoch: number;
}

interface CheckpointMessage {
  node_id: string;
  epoch: number;
  sequence: number;
  state: Buffer;
  saved_at_ms: number;
}

export interface StateDigest {
  readonly nodes: string[];
  readonly meetings: string[];
  readonly checkpoints: string[];
}

const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The digest as one member answers it (linearizable reads). */
export async function stateDigest(coordinator: grpc.Client): Promise<StateDigest> {
  const nodes = await unary<{ nodes: NodeMessage[] }>(coordinator, "ListNodes", {}, 10_000);
  const meetings = await unary<{ meetings: RouteMessage[] }>(coordinator, "ListMeetings", { node_id: "" }, 10_000);
  const checkpoints: string[] = [];
  for (const m of meetings.meetings) {
    try {
      const c = await unary<CheckpointMessage>(coordinator, "GetCheckpoint", { meeting_id: m.meeting_id }, 10_000);
      const hash = createHash("sha256").update(c.state).digest("hex").slice(0, 16);
      checkpoints.push(`${m.meeting_id} seq=${c.sequence} node=${c.node_id} epoch=${c.epoch} bytes=${c.state.length}:${hash} at=${c.saved_at_ms}`);
    } catch (err) {
      if ((err as grpc.ServiceError).code !== grpc.status.NOT_FOUND) throw err;
    }
  }
  return {
    nodes: nodes.nodes
      .map((n) => {
        const labels = Object.entries(n.labels).sort(([a], [b]) => byText(a, b)).map(([k, v]) => `${k}=${v}`).join(",");
        return `${n.node_id} gen=${n.generation} addr=${n.address} cap=${n.capacity} region=${n.region} labels=${labels}`;
      })
      .sort(byText),
    meetings: meetings.meetings.map((m) => `${m.meeting_id} on ${m.node_id} epoch ${m.epoch}`).sort(byText),
    checkpoints: checkpoints.sort(byText),
  };
}

/** The digest of a decoded state (a backup's), in stateDigest's terms, so the two compare. */
export function digestOfState(state: CoordinatorQueries): StateDigest {
  const checkpoints: string[] = [];
  const meetings = state.listMeetings();
  for (const m of meetings) {
    const c = state.getCheckpoint(m.meetingId);
    if (!c) continue;
    const hash = createHash("sha256").update(c.state).digest("hex").slice(0, 16);
    checkpoints.push(`${m.meetingId} seq=${c.sequence} node=${c.nodeId} epoch=${c.epoch} bytes=${c.state.length}:${hash} at=${c.savedAtMs}`);
  }
  return {
    nodes: state
      .listNodes()
      .map((n) => {
        const labels = [...n.labels].sort(([a], [b]) => byText(a, b)).map(([k, v]) => `${k}=${v}`).join(",");
        return `${n.nodeId} gen=${n.generation} addr=${n.address} cap=${n.capacity} region=${n.region} labels=${labels}`;
      })
      .sort(byText),
    meetings: meetings.map((m) => `${m.meetingId} on ${m.nodeId} epoch ${m.epoch}`).sort(byText),
    checkpoints: checkpoints.sort(byText),
  };
}

/** What differs between two digests, one line per difference ("" when none). */
export function digestDiff(before: StateDigest, after: StateDigest): string {
  const lines: string[] = [];
  for (const part of ["nodes", "meetings", "checkpoints"] as const) {
    const a = new Set(before[part]);
    const b = new Set(after[part]);
    for (const x of a) if (!b.has(x)) lines.push(`${part}: gone    ${x}`);
    for (const x of b) if (!a.has(x)) lines.push(`${part}: appeared ${x}`);
  }
  return lines.join("\n");
}

/**
 * One member's applied route table, from its own route feed (the full
 * table it sends a watcher that starts from revision 0), as
 * "meeting on node epoch" lines. Not linearizable: the member's own view.
 */
export async function memberRouteTable(address: string, timeoutMs = 5_000): Promise<string[]> {
  const client = new RouteFeed(address, grpc.credentials.createInsecure());
  try {
    const stream = (client as unknown as { WatchRoutes(r: unknown, o: grpc.CallOptions): grpc.ClientReadableStream<{ reset: boolean; changes: RouteMessage[] }> }).WatchRoutes(
      { from_revision: 0 },
      { deadline: Date.now() + timeoutMs },
    );
    const first = await new Promise<{ reset: boolean; changes: RouteMessage[] }>((resolve, reject) => {
      stream.once("data", resolve);
      stream.once("error", reject);
    });
    stream.cancel();
    if (!first.reset) throw new Error(`the route feed of ${address} did not start with the full table`);
    return first.changes.map((c) => `${c.meeting_id} on ${c.node_id} epoch ${c.epoch}`).sort(byText);
  } finally {
    client.close();
  }
}

export interface AuditEntry {
  index: number;
  kind: string;
  ok: boolean;
  code: string;
  summary: string;
}

const CoordinatorClient = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.Coordinator");

/**
 * A write through each member after a run, so that the trail read after
 * it holds every write the run caused: GetRoute with create for a meeting
 * that exists (one Raft write that changes nothing, left out by
 * AuditWatcher.writesAfter). A member forwards writes to the leader over
 * one connection and the leader proposes them in the order it takes them
 * in, so a write a member had taken in before its barrier gets a lower
 * index, and the barrier's answer comes once it is applied. A fixed wait
 * promises nothing of the kind: on a loaded machine a write may land a
 * second late.
 */
export async function writeBarrier(members: readonly string[], existingMeetingId: string): Promise<void> {
  for (const address of members) {
    const client = new CoordinatorClient(address, grpc.credentials.createInsecure());
    try {
      const r = await unary<{ created: boolean }>(client, "GetRoute", { meeting_id: existingMeetingId, create: true, region: "" }, 10_000);
      if (r.created) throw new Error(`the write barrier created meeting ${existingMeetingId}: it must be one that exists`);
    } finally {
      client.close();
    }
  }
}

/**
 * Collects the coordinator's audit trail (MemberAdmin.AuditLog, the newest
 * 1,000 applied commands) by polling while a fuzz run goes on, so that no
 * applied command is missed although the trail is a ring.
 */
export class AuditWatcher {
  readonly entries = new Map<number, AuditEntry>();
  /** Ranges of indexes that fell out of the ring before a poll saw them. */
  readonly gaps: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private highest = 0;

  constructor(private readonly admin: () => grpc.Client) {}

  /** Polls now and then every `everyMs`; returns the highest index applied so far. */
  async start(everyMs = 250): Promise<number> {
    await this.poll();
    this.timer = setInterval(() => {
      this.polling ??= this.poll().finally(() => (this.polling = undefined));
    }, everyMs);
    return this.highest;
  }

  /** Stops polling after one last poll (a linearizable read: after writeBarrier, it holds every write before the barrier). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.polling;
    await this.poll();
  }

  /**
   * Entries after `index` that changed the replicated state and are not
   * the leader's own records of what meeting servers report: liveness
   * changes, and load reports (the figures a server's heartbeat carries,
   * written when they move by 5% or cross a limit; a meeting server's
   * participants move whenever clients connect, hostile ones too). A create
   * of a meeting that exists and a re-sent checkpoint are writes that change
   * nothing (valid requests a run may send).
   */
  writesAfter(index: number): AuditEntry[] {
    const noOp = (e: AuditEntry): boolean =>
      (e.kind === "createMeeting" && / exists on /.test(e.summary)) || (e.kind === "saveCheckpoint" && e.summary.endsWith(": already stored"));
    return [...this.entries.values()]
      .filter((e) => e.index > index && e.ok && e.kind !== "setLiveness" && e.kind !== "reportLoad" && !noOp(e))
      .sort((a, b) => a.index - b.index);
  }

  refusedAfter(index: number): number {
    return [...this.entries.values()].filter((e) => e.index > index && !e.ok).length;
  }

  private async poll(): Promise<void> {
    let got: { entries: AuditEntry[] };
    try {
      got = await unary<{ entries: AuditEntry[] }>(this.admin(), "AuditLog", { limit: 1000 }, 5_000);
    } catch {
      return; // a busy member; the next poll catches up (a gap is recorded if the ring moved past)
    }
    // Raft indexes also number entries that are no commands (an election's
    // empty entry), so a jump says something was missed only when the ring is full.
    const oldest = got.entries[0]?.index;
    if (this.highest > 0 && got.entries.length >= 1000 && oldest !== undefined && oldest > this.highest + 1) {
      this.gaps.push(`${this.highest + 1}..${oldest - 1}`);
    }
    for (const e of got.entries) {
      this.entries.set(e.index, e);
      this.highest = Math.max(this.highest, e.index);
    }
  }
}
