/**
 * Who may call what: every gRPC method a member serves, and the roles it
 * allows. Pure; the server interceptor (auth-interceptor.ts) applies it to
 * every call, so no handler can forget. A method missing here is refused
 * to everyone (fail closed): a new service needs a row before it works.
 *
 *   operator  everything public, incl. drain, leadership, membership, EndMeeting
 *   gateway   GetRoute (incl. create), ListNodes, ClusterStatus: what routing,
 *             /healthz and the dashboard need; and the RouteFeed
 *   agent     the NodeAgent service, and ListMeetings, for its own node_id only
 *   member    the Raft transport, MemberAdmin.Status (ClusterStatus probes)
 *             and NodeConnection (watch streams reported to the leader)
 *
 * Health checking and reflection stay open: load balancers and grpcurl
 * must work without a token, and neither tells anything beyond which
 * services exist and whether this member hears a leader.
 */
import * as grpc from "@grpc/grpc-js";
import type { Identity, Role } from "./tokens.js";

export type Access =
  | { readonly open: true }
  | {
      readonly open: false;
      readonly roles: readonly Role[];
      /** An agent may call it only for the node its token names (request field node_id). */
      readonly ownNode: boolean;
    };

const OPEN: Access = { open: true };
const only = (...roles: Role[]): Access => ({ open: false, roles, ownNode: false });
const agentOwnNode: Access = { open: false, roles: ["operator", "agent"], ownNode: true };

const RULES: Readonly<Record<string, Access>> = {
  "/convene.v1.NodeAgent/Register": agentOwnNode,
  "/convene.v1.NodeAgent/Heartbeat": agentOwnNode,
  // Checked beat by beat: every message on the stream must name the agent's node.
  "/convene.v1.NodeAgent/HeartbeatStream": agentOwnNode,
  "/convene.v1.NodeAgent/WatchAssignments": agentOwnNode,
  "/convene.v1.NodeAgent/SaveCheckpoint": agentOwnNode,
  "/convene.v1.NodeAgent/Deregister": agentOwnNode,
  "/convene.v1.NodeAgent/HandOver": agentOwnNode,
  "/convene.v1.NodeAgent/Drain": agentOwnNode,

  "/convene.v1.Coordinator/GetRoute": only("operator", "gateway"),
  "/convene.v1.Coordinator/ListNodes": only("operator", "gateway"),
  "/convene.v1.Coordinator/ClusterStatus": only("operator", "gateway"),
  // An agent lists its own meetings: its linearizable check before it
  // releases meetings a watch stream did not re-announce (node-agent.ts).
  "/convene.v1.Coordinator/ListMeetings": agentOwnNode,
  "/convene.v1.Coordinator/GetCheckpoint": only("operator"),
  "/convene.v1.Coordinator/EndMeeting": only("operator"),
  "/convene.v1.Coordinator/DrainNode": only("operator"),
  "/convene.v1.Coordinator/TransferLeadership": only("operator"),
  "/convene.v1.Coordinator/MoveMeeting": only("operator"),
  "/convene.v1.Coordinator/Rebalance": only("operator"),
  "/convene.v1.Coordinator/UndrainNode": only("operator"),
  // The events relay (convene events-relay) runs with an operator token.
  "/convene.v1.Coordinator/WatchEvents": only("operator"),

  "/convene.routes.v1.RouteFeed/WatchRoutes": only("operator", "gateway"),
  "/convene.routes.v1.RouteFeed/ReportUpstreamFailure": only("operator", "gateway"),

  "/convene.member.v1.MemberAdmin/Status": only("operator", "member"),
  "/convene.member.v1.MemberAdmin/AddLearner": only("operator"),
  "/convene.member.v1.MemberAdmin/Promote": only("operator"),
  "/convene.member.v1.MemberAdmin/Remove": only("operator"),
  "/convene.member.v1.MemberAdmin/TransferLeadership": only("operator"),
  // The gateway's dashboard reads the timeline of failures and moves from it.
  "/convene.member.v1.MemberAdmin/AuditLog": only("operator", "gateway"),
  "/convene.member.v1.MemberAdmin/Snapshot": only("operator"),
  // Internal: a member tells the leader that an agent's watch stream opened or broke.
  "/convene.member.v1.MemberAdmin/NodeConnection": only("member"),

  "/convene.member.v1.Kv/Put": only("operator"),
  "/convene.member.v1.Kv/Create": only("operator"),
  "/convene.member.v1.Kv/Get": only("operator"),
  "/convene.member.v1.Kv/Dump": only("operator"),

  "/convene.raft.v1.RaftTransport/Stream": only("member"),
  "/convene.raft.v1.RaftTransport/SendSnapshot": only("member"),

  "/grpc.health.v1.Health/Check": OPEN,
  "/grpc.health.v1.Health/Watch": OPEN,
  "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": OPEN,
  "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": OPEN,
};

/** The rule for a method path ("/pkg.Service/Method"); undefined: nobody may call it. */
export function accessRule(path: string): Access | undefined {
  return Object.prototype.hasOwnProperty.call(RULES, path) ? RULES[path] : undefined;
}

/** Every method path with a rule (for tests that check each served method has one). */
export function ruledMethods(): string[] {
  return Object.keys(RULES);
}

export type Decision = { readonly ok: true } | { readonly ok: false; readonly code: grpc.status; readonly details: string };

const ALLOW: Decision = { ok: true };

function methodName(path: string): string {
  return path.replace(/^\//, "");
}

/**
 * Whether `identity` (undefined: no valid credentials) may call `path` at
 * all. The agent's node rule needs the request: see checkRequest.
 */
export function authorizeCall(path: string, identity: Identity | undefined): Decision {
  const rule = accessRule(path);
  if (rule?.open) return ALLOW;
  if (!identity) return { ok: false, code: grpc.status.UNAUTHENTICATED, details: `${methodName(path)} needs credentials: send the metadata "authorization: Bearer <token>" with a token from the members' tokens file` };
  if (!rule) return { ok: false, code: grpc.status.PERMISSION_DENIED, details: `${methodName(path)} has no access rule; no role may call it` };
  if (!rule.roles.includes(identity.role)) {
    return { ok: false, code: grpc.status.PERMISSION_DENIED, details: `role ${identity.role} may not call ${methodName(path)} (allowed: ${rule.roles.join(", ")})` };
  }
  return ALLOW;
}

/** Whether the calls to `path` need each request checked by checkRequest (an agent acting for a node). */
export function needsRequestCheck(path: string, identity: Identity | undefined): boolean {
  const rule = accessRule(path);
  return identity?.role === "agent" && rule !== undefined && !rule.open && rule.ownNode;
}

/** An agent may only act for its own node: the request's node_id must be the one its token names. */
export function checkRequest(path: string, identity: Identity, request: unknown): Decision {
  if (!needsRequestCheck(path, identity)) return ALLOW;
  const nodeId = request !== null && typeof request === "object" ? (request as { node_id?: unknown }).node_id : undefined;
  if (nodeId === identity.node) return ALLOW;
  return {
    ok: false,
    code: grpc.status.PERMISSION_DENIED,
    details: `the agent token of node ${identity.node} may not act for node ${JSON.stringify(nodeId ?? "")} (${methodName(path)} node_id)`,
  };
}
