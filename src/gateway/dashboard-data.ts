/**
 * What the dashboard shows, as JSON (`GET /dashboard.json`), gathered at
 * most every `maxAgeMs` however many browsers poll:
 * - the coordinator members (ClusterStatus, asked of each member: the
 *   leader answers for all), with roles and how far each lags the leader;
 * - the meeting servers (ListNodes): state, meetings against capacity, and
 *   their state history from the audit trail;
 * - the meetings this gateway routes (its route table, which the route feed
 *   keeps whole), with links;
 * - a timeline of failures and moves with their durations, from the
 *   coordinator's replicated audit trail (MemberAdmin.AuditLog), so it
 *   survives a restart of this gateway;
 * - this gateway itself.
 * Every part that cannot be read says why instead of failing the page.
 */
import { type AuditEntryMessage, type StateChange, type TimelineEvent, timelineOf } from "./audit-timeline.js";
import type { CoordinatorClient } from "./coordinator-client.js";
import type { Route } from "./route-cache.js";

const ROLES = ["unknown", "leader", "follower", "candidate", "learner"];
const NODE_STATES = ["unknown", "alive", "suspect", "dead", "draining"];
/** Audit entries read per refresh: the newest, where failures and moves are. */
const AUDIT_ENTRIES = 1000;
/** Meetings listed; the total is always given. */
const MEETINGS_SHOWN = 200;
/** Bound on each call of a refresh: a slow member shows as unreachable rather than holding the page. */
const CALL_DEADLINE_MS = 1500;

export interface MemberView {
  readonly address: string;
  readonly reachable: boolean;
  readonly id: string;
  readonly role: string;
  readonly term: number;
  readonly leaderId: string;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  /** Entries the member has still to apply to reach the leader's commit index; null when unknown. */
  readonly lag: number | null;
  readonly error: string | undefined;
}

export interface NodeView {
  readonly nodeId: string;
  readonly address: string;
  readonly state: string;
  readonly meetings: number;
  readonly capacity: number;
  readonly region: string;
  /** Its latest state changes from the audit trail, oldest first (at most 6). */
  readonly history: readonly StateChange[];
}

export interface MeetingView {
  readonly meetingId: string;
  readonly nodeId: string;
  /** 1 when created; one more for every move. */
  readonly epoch: number;
  /** The meeting through this gateway. */
  readonly link: string;
}

/** What gateway.ts tells about itself. */
export interface GatewayView {
  readonly address: string;
  readonly healthy: boolean;
  readonly createEnabled: boolean;
  /** Meetings whose server this gateway knows without asking. */
  readonly cachedRoutes: number;
  readonly feedRevision: number;
  /** The member whose route updates it follows, if any. */
  readonly feedMember: string | null;
  readonly openWebSockets: number;
}

export interface DashboardData {
  readonly generatedAtMs: number;
  readonly gateway: GatewayView;
  readonly members: readonly MemberView[];
  readonly nodes: readonly NodeView[] | null;
  readonly nodesError: string | null;
  readonly meetings: { readonly total: number; readonly shown: readonly MeetingView[] };
  readonly timeline: readonly TimelineEvent[] | null;
  readonly timelineError: string | null;
}

interface ClusterStatusMessage {
  leader_id?: string;
  term?: number;
  members?: { id?: string; address?: string; role?: number; commit_index?: number; applied_index?: number; reachable?: boolean }[];
}

interface ListNodesMessage {
  nodes?: { node_id?: string; address?: string; state?: number; meetings?: number; capacity?: number; region?: string }[];
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class DashboardSource {
  private last: { atMs: number; data: Promise<DashboardData> } | undefined;

  constructor(
    private readonly client: CoordinatorClient,
    private readonly gatewayView: () => GatewayView,
    /** Every route this gateway holds. */
    private readonly routes: () => Iterable<Route>,
    private readonly maxAgeMs = 500,
  ) {}

  get(nowMs: number = Date.now()): Promise<DashboardData> {
    if (this.last && nowMs - this.last.atMs < this.maxAgeMs) return this.last.data;
    const data = this.gather(nowMs);
    this.last = { atMs: nowMs, data };
    return data;
  }

  private async gather(nowMs: number): Promise<DashboardData> {
    const [members, nodes, audit] = await Promise.all([
      Promise.all(this.client.addresses.map((a) => this.member(a))),
      this.client.unary<ListNodesMessage>("Coordinator", "ListNodes", {}, { deadlineMs: CALL_DEADLINE_MS }).then(
        (r) => ({ nodes: r.nodes ?? [], error: null }),
        (err: unknown) => ({ nodes: null, error: message(err) }),
      ),
      this.client.unary<{ entries?: AuditEntryMessage[] }>("MemberAdmin", "AuditLog", { limit: AUDIT_ENTRIES }, { deadlineMs: CALL_DEADLINE_MS }).then(
        (r) => ({ timeline: timelineOf(r.entries ?? []), error: null }),
        (err: unknown) => ({ timeline: null, error: message(err) }),
      ),
    ]);
    const leaderCommit = Math.max(0, ...members.filter((m) => m.role === "leader").map((m) => m.commitIndex));
    // A member that did not answer is still named by the others' answers.
    const named = new Map(members.flatMap((m) => m.listed).map((l) => [l.address ?? "", l.id ?? ""]));
    return {
      generatedAtMs: nowMs,
      gateway: this.gatewayView(),
      members: members.map(({ listed: _listed, ...m }) => ({
        ...m,
        id: m.id === "?" ? named.get(m.address) || "?" : m.id,
        lag: m.reachable && leaderCommit > 0 ? Math.max(0, leaderCommit - m.appliedIndex) : null,
      })),
      nodes: nodes.nodes === null ? null : nodes.nodes.map((n) => nodeView(n, audit.timeline?.history.get(n.node_id ?? "") ?? [])).sort((a, b) => a.nodeId.localeCompare(b.nodeId)),
      nodesError: nodes.error,
      meetings: this.meetings(),
      timeline: audit.timeline?.events ?? null,
      timelineError: audit.error,
    };
  }

  private meetings(): DashboardData["meetings"] {
    const all = [...this.routes()].sort((a, b) => a.meetingId.localeCompare(b.meetingId));
    return {
      total: all.length,
      shown: all.slice(0, MEETINGS_SHOWN).map((r) => ({ meetingId: r.meetingId, nodeId: r.nodeId, epoch: r.epoch, link: `/meetings/${r.meetingId}/` })),
    };
  }

  private async member(address: string): Promise<Omit<MemberView, "lag"> & { listed: NonNullable<ClusterStatusMessage["members"]> }> {
    try {
      const s = (await this.client.callAt(address, "Coordinator", "ClusterStatus", {}, CALL_DEADLINE_MS)) as ClusterStatusMessage;
      const all = s.members ?? [];
      // This member's entry: the one listed at the address asked (the leader reports each member's own indexes).
      const self = all.find((m) => m.address === address) ?? all.find((m) => (m.commit_index ?? 0) > 0);
      return {
        address,
        reachable: self?.reachable ?? true,
        id: self?.id ?? "?",
        role: ROLES[self?.role ?? 0] ?? "unknown",
        term: s.term ?? 0,
        leaderId: s.leader_id ?? "",
        commitIndex: self?.commit_index ?? 0,
        appliedIndex: self?.applied_index ?? 0,
        error: undefined,
        listed: all,
      };
    } catch (err) {
      return { address, reachable: false, id: "?", role: "unreachable", term: 0, leaderId: "", commitIndex: 0, appliedIndex: 0, error: message(err), listed: [] };
    }
  }
}

function nodeView(n: NonNullable<ListNodesMessage["nodes"]>[number], history: readonly StateChange[]): NodeView {
  return {
    nodeId: n.node_id ?? "",
    address: n.address ?? "",
    state: NODE_STATES[n.state ?? 0] ?? "unknown",
    meetings: n.meetings ?? 0,
    capacity: n.capacity ?? 0,
    region: n.region ?? "",
    history: history.slice(-6),
  };
}
