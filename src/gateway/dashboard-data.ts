/**
 * What the dashboard shows, as JSON (`GET /dashboard.json`): every
 * coordinator member's own view (Coordinator.ClusterStatus asked of each
 * member: role, term, commit and applied index), the meeting servers
 * (Coordinator.ListNodes: state, meetings against capacity), the recent
 * moves seen on the route feed, and this gateway's cache. Gathered at most
 * every `maxAgeMs`, however many browsers poll.
 */
import type { CoordinatorClient } from "./coordinator-client.js";
import type { RouteMove } from "./route-cache.js";

const ROLES = ["unknown", "leader", "follower", "candidate", "learner"];
const NODE_STATES = ["unknown", "alive", "suspect", "dead", "draining"];

export interface MemberView {
  readonly address: string;
  readonly reachable: boolean;
  readonly id: string;
  readonly role: string;
  readonly term: number;
  readonly leaderId: string;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly error: string | undefined;
}

export interface NodeView {
  readonly nodeId: string;
  readonly address: string;
  readonly state: string;
  readonly meetings: number;
  readonly capacity: number;
  readonly region: string;
}

export interface DashboardData {
  readonly generatedAtMs: number;
  readonly gateway: {
    readonly address: string;
    readonly healthy: boolean;
    readonly createEnabled: boolean;
    readonly cachedRoutes: number;
    readonly feedRevision: number;
    readonly feedMember: string | null;
    readonly openWebSockets: number;
  };
  readonly members: readonly MemberView[];
  readonly nodes: readonly NodeView[] | null;
  readonly nodesError: string | null;
  readonly moves: readonly RouteMove[];
}

export type GatewayView = DashboardData["gateway"];

interface ClusterStatusMessage {
  leader_id?: string;
  term?: number;
  members?: { id?: string; address?: string; role?: number; commit_index?: number; applied_index?: number }[];
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
    private readonly moves: () => readonly RouteMove[],
    private readonly maxAgeMs = 500,
  ) {}

  get(nowMs: number = Date.now()): Promise<DashboardData> {
    if (this.last && nowMs - this.last.atMs < this.maxAgeMs) return this.last.data;
    const data = this.gather(nowMs);
    this.last = { atMs: nowMs, data };
    return data;
  }

  private async gather(nowMs: number): Promise<DashboardData> {
    const [members, nodes] = await Promise.all([
      Promise.all(this.client.addresses.map((a) => this.member(a))),
      this.client.unary<ListNodesMessage>("Coordinator", "ListNodes", {}, { deadlineMs: 1000 }).then(
        (r) => ({ nodes: (r.nodes ?? []).map(nodeView), error: null }),
        (err: unknown) => ({ nodes: null, error: message(err) }),
      ),
    ]);
    return { generatedAtMs: nowMs, gateway: this.gatewayView(), members, nodes: nodes.nodes, nodesError: nodes.error, moves: this.moves() };
  }

  private async member(address: string): Promise<MemberView> {
    try {
      const s = (await this.client.callAt(address, "Coordinator", "ClusterStatus", {}, 500)) as ClusterStatusMessage;
      const all = s.members ?? [];
      // The member's own entry: the one listed at the address we asked (its commit index is its own).
      const self = all.find((m) => m.address === address) ?? all.find((m) => (m.commit_index ?? 0) > 0);
      return {
        address,
        reachable: true,
        id: self?.id ?? "?",
        role: ROLES[self?.role ?? 0] ?? "unknown",
        term: s.term ?? 0,
        leaderId: s.leader_id ?? "",
        commitIndex: self?.commit_index ?? 0,
        appliedIndex: self?.applied_index ?? 0,
        error: undefined,
      };
    } catch (err) {
      return { address, reachable: false, id: "?", role: "down", term: 0, leaderId: "", commitIndex: 0, appliedIndex: 0, error: message(err) };
    }
  }
}

function nodeView(n: NonNullable<ListNodesMessage["nodes"]>[number]): NodeView {
  return {
    nodeId: n.node_id ?? "",
    address: n.address ?? "",
    state: NODE_STATES[n.state ?? 0] ?? "unknown",
    meetings: n.meetings ?? 0,
    capacity: n.capacity ?? 0,
    region: n.region ?? "",
  };
}
