/**
 * gRPC handlers of convene.v1.Coordinator (API.md), called by gateways,
 * operators and tools. Reads are linearizable (ReadIndex) on whichever
 * member answers; writes go to the leader (followers forward).
 */
import type * as grpc from "@grpc/grpc-js";
import type { LeaderForwarder } from "../../member/leader-forwarder.js";
import { NotLeaderError } from "../../raft/errors.js";
import type { RaftDriver } from "../../raft-runtime/driver.js";
import { StateRole } from "../../raft/types.js";
import type { CreateMeetingResult, DrainNodeResult } from "../command-results.js";
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, failureToError } from "../errors.js";
import { validateBoolean, validateMeetingId, validateNodeId, validateRegion, validateUint } from "../ids.js";
import { labelsToRecord, validateLabels } from "../labels.js";
import { validateDuration, validateNodeIdOrEmpty } from "../move-commands.js";
import type { Logger } from "pino";
import type { Formats } from "../formats.js";
import type { NodeStatus, Route } from "../model.js";
import type { CoordinatorReplica } from "./coordinator-replica.js";
import { MAX_MEETINGS_PAGE, decodePageToken, encodePageToken, pageSize } from "../../wire/paging.js";
import { unaryHandler } from "./handler.js";
import type { MemberProbe } from "./member-probe.js";
import { checkpointMessage } from "./watch-hub.js";
import { describeValue } from "../../wire/describe.js";

type Req = Record<string, unknown>;

const NODE_STATE: Record<NodeStatus, number> = { ALIVE: 1, SUSPECT: 2, DEAD: 3, DRAINING: 4 };
const ROLE: Record<StateRole, number> = {
  [StateRole.Leader]: 1,
  [StateRole.Follower]: 2,
  [StateRole.Candidate]: 3,
  [StateRole.PreCandidate]: 3,
};

function routeMessage(r: Route, revision: number, created = false): Record<string, unknown> {
  return { meeting_id: r.meetingId, node_id: r.nodeId, address: r.address, epoch: r.epoch, created, revision };
}

/**
 * GetRoute on this member (the handler's work, apart from gRPC; the
 * whole-product simulation calls it too). The answer carries the revision
 * it is as of: the read's applied index, or the create's own index.
 */
export async function answerGetRoute(coordinator: CoordinatorReplica, req: Req): Promise<Record<string, unknown>> {
  const meetingId = validateMeetingId(req.meeting_id);
  const create = validateBoolean(req.create ?? false, "create");
  const region = validateRegion(req.region ?? "");
  // Placement constraints: validated always, used only by a create.
  const requiredLabels = validateLabels(req.required_labels ?? {}, "required_labels");
  const excludedLabels = validateLabels(req.excluded_labels ?? {}, "excluded_labels");
  const preferredNodeId = validateNodeIdOrEmpty(req.preferred_node_id ?? "", "preferred_node_id");
  if (create) {
    // One Raft write answers both cases (create-if-absent returns an
    // existing route unchanged), and makes concurrent creates of one
    // meeting agree: a read first would cost a second round.
    const { result, index } = await coordinator.proposeAt<CreateMeetingResult>({ type: "createMeeting", meetingId, region, requiredLabels, excludedLabels, preferredNodeId });
    return routeMessage(result.route, index, result.created);
  }
  const { found, revision } = await coordinator.read((q) => ({ found: q.getRoute(meetingId), revision: q.appliedIndex }));
  if (!found.ok) throw failureToError(found);
  return routeMessage(found.route, revision);
}

export function coordinatorHandlers(deps: {
  coordinator: CoordinatorReplica;
  forwarder: LeaderForwarder;
  /** Member addresses, for ClusterStatus. */
  peers: () => ReadonlyMap<string, string>;
  probe: MemberProbe;
  /** What this member's binary understands. */
  ownFormats: Formats;
  logger?: Pick<Logger, "info">;
}): grpc.UntypedServiceImplementation {
  const { coordinator, forwarder } = deps;
  const raft: RaftDriver = coordinator.raft;

  return {
    GetRoute: unaryHandler<Req>(forwarder, "GetRoute", (req) => answerGetRoute(coordinator, req)),

    EndMeeting: unaryHandler<Req>(forwarder, "EndMeeting", async (req) => {
      await coordinator.propose({ type: "endMeeting", meetingId: validateMeetingId(req.meeting_id) });
      return {};
    }),

    GetCheckpoint: unaryHandler<Req>(forwarder, "GetCheckpoint", async (req) => {
      const meetingId = validateMeetingId(req.meeting_id);
      const c = await coordinator.read((q) => q.getCheckpoint(meetingId));
      if (!c) throw new NotFoundError(`meeting ${meetingId} has no checkpoint`);
      return checkpointMessage(c);
    }),

    ListNodes: unaryHandler<Req>(forwarder, "ListNodes", async () => {
      const nodes = await coordinator.read((q) => q.listNodes());
      return {
        nodes: nodes.map((n) => ({
          node_id: n.nodeId,
          address: n.address,
          capacity: n.capacity,
          region: n.region,
          labels: labelsToRecord(n.labels),
          state: NODE_STATE[n.state],
          meetings: n.meetings,
          generation: n.generation,
          limits: {
            cpu: n.limits.cpuPermille / 1000,
            net_in_bytes_per_sec: n.limits.netInBytesPerSec,
            net_out_bytes_per_sec: n.limits.netOutBytesPerSec,
            participants: n.limits.participants,
          },
          load: {
            cpu: n.load.cpuPermille / 1000,
            net_in_bytes_per_sec: n.load.netInBytesPerSec,
            net_out_bytes_per_sec: n.load.netOutBytesPerSec,
            participants: n.load.participants,
            reported_at_ms: n.load.reportedAtMs,
          },
          drain_deadline_ms: n.drainDeadlineMs,
        })),
      };
    }),

    ListMeetings: unaryHandler<Req>(forwarder, "ListMeetings", async (req) => {
      const nodeId = req.node_id ? validateNodeId(req.node_id) : "";
      const after = decodePageToken(req.page_token, "meetings", nodeId) ?? "";
      const limit = pageSize(req.page_size, MAX_MEETINGS_PAGE);
      const page = await coordinator.read((q) => q.listMeetingsPage(nodeId, after, limit));
      const last = page.routes.at(-1);
      return {
        meetings: page.routes.map((r) => routeMessage(r, 0)),
        next_page_token: page.more && last ? encodePageToken("meetings", nodeId, last.meetingId) : "",
      };
    }),

    DrainNode: unaryHandler<Req>(forwarder, "DrainNode", async (req) => {
      const nodeId = validateNodeId(req.node_id);
      const migrate = validateBoolean(req.migrate ?? false, "migrate");
      const deadlineMs = validateUint(req.deadline_ms ?? 0, "deadline_ms");
      if (deadlineMs === 0) {
        const r = await coordinator.propose<DrainNodeResult>({ type: "drainNode", nodeId, migrate });
        deps.logger?.info({ nodeId, migrate, moved: r.moved, stayed: r.stayed, term: raft.term }, "node draining");
        return { moved: r.moved, stayed: r.stayed };
      }
      // A planned drain: its meetings are handed over at the deadline, not moved now.
      if (migrate) throw new InvalidArgumentError("deadline_ms and migrate exclude each other: migrate moves the meetings now, a deadline hands them over later");
      await coordinator.propose({ type: "scheduleDrain", nodeId, generation: 0, afterMs: validateDuration(deadlineMs, "deadline_ms") });
      deps.logger?.info({ nodeId, deadlineMs, term: raft.term }, "node draining with a deadline");
      return { moved: 0, stayed: 0 };
    }),

    // Answered by the leader (a follower forwards), which asks every member
    // for its own indexes: each is reported as that member sees itself.
    ClusterStatus: unaryHandler<Req>(forwarder, "ClusterStatus", async () => {
      const s = raft.status();
      if (s.role !== StateRole.Leader) throw new NotLeaderError(s.lead, raft.leaderAddress());
      const peers = deps.peers();
      const ids = [...new Set([...s.confState.voters, ...s.confState.learners])].sort();
      const answers = await Promise.all(ids.map((id) => {
        const address = peers.get(id);
        return id === s.id || !address ? undefined : deps.probe.status(address);
      }));
      return {
        leader_id: s.lead,
        term: s.term,
        cluster_version: coordinator.local().clusterVersion,
        members: ids.map((id, i) => {
          const learner = s.confState.learners.includes(id);
          const self = id === s.id;
          const answer = answers[i];
          return {
            id,
            address: peers.get(id) ?? "",
            role: learner ? 4 : self ? ROLE[s.role] : 2,
            commit_index: self ? s.commit : (answer?.commitIndex ?? 0),
            applied_index: self ? s.applied : (answer?.appliedIndex ?? 0),
            reachable: self || answer !== undefined,
            ...(self ? { formats: deps.ownFormats } : answer ? { formats: answer.formats } : {}),
          };
        }),
      };
    }),

    TransferLeadership: unaryHandler<Req>(forwarder, "TransferLeadership", async (req) => {
      const s = raft.status();
      if (!raft.isLeader()) throw new NotLeaderError(s.lead, raft.leaderAddress());
      let target = typeof req.target_id === "string" ? req.target_id : "";
      if (target === "") {
        // The best: the most caught-up other voter.
        let best = -1;
        for (const id of s.confState.voters) {
          const m = s.progress.get(id)?.match ?? -1;
          if (id !== s.id && m > best) [target, best] = [id, m];
        }
      }
      if (target === "") throw new FailedPreconditionError(`there is no other voter to hand leadership to (voters: ${s.confState.voters.join(", ")})`);
      // Already there: nothing to transfer (idempotent, like a repeated drain).
      if (target === s.id) return { leader_id: s.id };
      if (s.confState.learners.includes(target)) {
        throw new FailedPreconditionError(`target_id ${target} is a learner, which cannot lead; promote it first (convene members promote ${target})`);
      }
      if (!s.confState.voters.includes(target)) {
        const voters = [...s.confState.voters].sort().join(", ");
        throw new FailedPreconditionError(`target_id ${describeValue(target)} is not a member of the group (voters: ${voters})`);
      }
      if ((s.progress.get(target)?.match ?? 0) + 1000 < s.commit) {
        throw new FailedPreconditionError(`target_id ${target} has not caught up`);
      }
      await raft.transferLeadership(target);
      return { leader_id: target };
    }),
  };
}
