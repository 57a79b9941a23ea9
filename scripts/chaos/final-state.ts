/**
 * After the faults: bring everything back (heal, SIGCONT, restart what is
 * down), wait until the cluster is healthy, then read the final state.
 *
 * Healthy means, all at once: one leader that every member follows, the
 * membership the runner expects (no learners left), every member applied
 * up to the leader's commit index, every gateway's /healthz 200, every
 * current meeting server ALIVE, and every meeting routed to an ALIVE
 * current server that answers for it through every gateway. Whatever still
 * fails when the time is up is reported, one problem per line.
 */
import type { MemberStatus } from "../../src/cli/render.js";
import type { ChaosCluster } from "./cluster.js";
import type { CheckpointReadOp, History, RouteOp, ServeOp } from "./history.js";
import type { Workload } from "./load.js";
import type { NodeInfoMessage, RouteMessage } from "./rpc.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Heals the network, resumes paused processes and starts every one that is down. */
export async function restoreAll(cluster: ChaosCluster): Promise<void> {
  await cluster.network.healAll();
  const all = [...cluster.members.values(), ...cluster.gateways, ...cluster.servers];
  for (const p of all) if (p.child?.alive && p.child.paused) p.child.resume();
  for (const m of cluster.members.values()) if (!m.child?.alive) cluster.startMember(m.id);
  for (const g of cluster.gateways) if (!g.child?.alive) cluster.startGateway(g);
  for (const s of cluster.servers) if (!s.child?.alive) cluster.startServer(s);
}

export interface HealthOutcome {
  readonly problems: string[];
  readonly waitedMs: number;
  readonly summary: string;
}

/** Polls until healthy or `timeoutMs`; records the proxied requests it makes. */
export async function waitHealthy(cluster: ChaosCluster, history: History, timeoutMs: number): Promise<HealthOutcome> {
  const start = Date.now();
  let problems: string[] = ["not checked"];
  let summary = "";
  while (Date.now() - start < timeoutMs) {
    ({ problems, summary } = await healthRound(cluster, history));
    if (problems.length === 0) break;
    await sleep(500);
  }
  return { problems, waitedMs: Date.now() - start, summary };
}

async function healthRound(cluster: ChaosCluster, history: History): Promise<{ problems: string[]; summary: string }> {
  const problems: string[] = [];
  const ids = [...cluster.members.keys()].sort();
  const statuses = new Map<string, MemberStatus | undefined>();
  for (const id of ids) statuses.set(id, await cluster.memberStatus(id, 2000));
  const leaders = [...statuses.values()].filter((s) => s?.role === "leader");
  const leader = leaders.sort((a, b) => b!.term - a!.term)[0];
  if (!leader) return { problems: ["no leader"], summary: "" };
  for (const [id, s] of statuses) {
    if (!s) problems.push(`member ${id} does not answer`);
    else if (s.leader_id !== leader.id || s.term !== leader.term) problems.push(`member ${id} follows ${s.leader_id || "nobody"} in term ${s.term}, not ${leader.id} in term ${leader.term}`);
    else if (s.applied_index < leader.commit_index) problems.push(`member ${id} applied ${s.applied_index} < leader's commit ${leader.commit_index}`);
  }
  const voters = [...leader.voters].sort().join(",");
  if (voters !== ids.join(",") || leader.learners.length > 0) {
    problems.push(`membership is voters [${voters}] learners [${leader.learners.join(",")}], expected voters [${ids.join(",")}]`);
  }
  for (const g of cluster.gateways) if (!(await cluster.gatewayHealthy(g))) problems.push(`gateway ${g.name} /healthz is not 200`);

  let nodes: NodeInfoMessage[] = [];
  let routes: RouteMessage[] = [];
  try {
    nodes = (await cluster.rpc.call<{ nodes: NodeInfoMessage[] }>("Coordinator", cluster.memberAddress(leader.id), "ListNodes", {}, 3000)).nodes;
    routes = (await cluster.rpc.call<{ meetings: RouteMessage[] }>("Coordinator", cluster.memberAddress(leader.id), "ListMeetings", { node_id: "" }, 3000)).meetings;
  } catch (err) {
    problems.push(`ListNodes/ListMeetings failed: ${(err as Error).message}`);
    return { problems, summary: "" };
  }
  const alive = new Set(nodes.filter((n) => n.state === 1).map((n) => n.node_id));
  const current = new Set(cluster.servers.map((s) => s.nodeId));
  for (const s of cluster.servers) if (!alive.has(s.nodeId)) problems.push(`meeting server ${s.nodeId} is not ALIVE`);
  for (const r of routes) {
    if (r.node_id === "") problems.push(`meeting ${r.meeting_id} is unassigned`);
    else if (!alive.has(r.node_id) || !current.has(r.node_id)) problems.push(`meeting ${r.meeting_id} is on ${r.node_id}, which is not a live server`);
  }
  if (problems.length > 0) return { problems, summary: "" };
  // Every meeting answers through every gateway, from the node its route names.
  for (const r of routes) {
    for (const g of cluster.gateways) {
      const op = history.add<ServeOp>({ kind: "serve", client: -2, gateway: cluster.gatewayInstance(g), meetingId: r.meeting_id, call: Date.now() });
      try {
        const res = await fetch(`http://${g.address}/meetings/${r.meeting_id}/op?c=final`, { signal: AbortSignal.timeout(4000) });
        const body = (await res.json()) as { nodeId?: string; epoch?: number; generation?: number; counter?: number };
        op.ret = Date.now();
        op.status = res.status;
        op.headerNode = res.headers.get("x-convene-node") ?? undefined;
        if (res.status === 200 && typeof body.nodeId === "string" && typeof body.epoch === "number") {
          op.served = { nodeId: body.nodeId, epoch: body.epoch, generation: body.generation ?? 0, counter: body.counter ?? 0 };
        }
        if (res.status !== 200) problems.push(`meeting ${r.meeting_id} through ${g.name}: HTTP ${res.status}`);
        else if (body.nodeId !== r.node_id) problems.push(`meeting ${r.meeting_id} through ${g.name}: served by ${body.nodeId}, routed to ${r.node_id}`);
      } catch (err) {
        op.error = (err as Error).message;
        problems.push(`meeting ${r.meeting_id} through ${g.name}: ${(err as Error).message}`);
      }
    }
  }
  const summary =
    `leader ${leader.id} (term ${leader.term}), members ${ids.join(", ")} caught up to ${leader.commit_index}; ` +
    `${cluster.gateways.length} gateways healthy; servers ${[...current].join(", ")} alive; ${routes.length} meetings routable through every gateway`;
  return { problems, summary };
}

/**
 * The operator's view (Coordinator.ClusterStatus, what `convene status` and
 * the dashboard show), through each member: one line, for the report. Not
 * part of health: health asks each member itself (MemberAdmin.Status).
 */
export async function operatorView(cluster: ChaosCluster): Promise<string> {
  const out: string[] = [];
  for (const id of [...cluster.members.keys()].sort()) {
    try {
      const s = await cluster.rpc.call<{ leader_id: string; members: { id: string; address: string; reachable: boolean; applied_index: number }[] }>(
        "Coordinator", cluster.memberAddress(id), "ClusterStatus", {}, 3000,
      );
      const bad = s.members.filter((m) => !m.reachable || m.address === "");
      out.push(`through ${id}: leader ${s.leader_id}, ${s.members.length} members${bad.length ? `, shown unreachable or without address: ${bad.map((m) => m.id).join(", ")}` : ", all reachable"}`);
    } catch (err) {
      out.push(`through ${id}: FAILED ${(err as Error).message.replace(/^ClusterStatus at \S+ /, "")}`);
    }
  }
  return out.join("; ");
}

export interface FinalReads {
  readonly routes: Map<string, RouteOp>;
  readonly checkpoints: Map<string, CheckpointReadOp>;
}

/** GetRoute(create=false) and GetCheckpoint for every meeting the workload ever named (recorded like any read), a few at a time. */
export async function readFinal(workload: Workload): Promise<FinalReads> {
  const routes = new Map<string, RouteOp>();
  const checkpoints = new Map<string, CheckpointReadOp>();
  const ids = [...workload.meetings.keys()];
  let next = 0;
  const reader = async (): Promise<void> => {
    while (next < ids.length) {
      const id = ids[next++]!;
      routes.set(id, await workload.routeGrpc(-3, id, false));
      checkpoints.set(id, await workload.readCheckpoint(-3, id));
    }
  };
  await Promise.all(Array.from({ length: 8 }, reader));
  return { routes, checkpoints };
}
