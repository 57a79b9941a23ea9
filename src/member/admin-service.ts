/**
 * The gRPC handlers of MemberAdmin (proto/member.proto): status and
 * runtime membership changes. Changes need the leader; followers forward.
 */
import type * as grpc from "@grpc/grpc-js";
import type { AuditEntry } from "../coordinator/model.js";
import type { StreamReport, StreamReportAnswer } from "../coordinator/service/node-streams.js";
import { NotLeaderError } from "../raft/errors.js";
import type { RaftDriver } from "../raft-runtime/driver.js";
import { InvalidArgumentError, toGrpcError } from "./grpc-status.js";
import { HOST_PORT_RULE, describeValue as shownValue, idProblem } from "../wire/describe.js";
import { MAX_AUDIT_PAGE, decodePageToken, encodePageToken, pageSize } from "../wire/paging.js";
import { LeaderForwarder } from "./leader-forwarder.js";
import { snapshotHandler } from "./snapshot-service.js";

const HOST_PORT = /^[A-Za-z0-9.-]+:\d{1,5}$/;

interface MemberRequest {
  id: string;
  address: string;
}

export function statusOf(node: RaftDriver, extras: () => Record<string, unknown> = () => ({})): Record<string, unknown> {
  const s = node.status();
  const memory = process.memoryUsage();
  return {
    id: s.id,
    role: s.role,
    term: s.term,
    leader_id: s.lead,
    leader_address: s.leaderAddress,
    commit_index: s.commit,
    applied_index: s.applied,
    last_index: s.lastIndex,
    snapshot_index: s.snapshotIndex,
    voters: s.confState.voters,
    learners: s.confState.learners,
    rss_bytes: memory.rss,
    heap_used_bytes: memory.heapUsed,
    heap_total_bytes: memory.heapTotal,
    array_buffers_bytes: memory.arrayBuffers,
    ...extras(),
  };
}

/** Where a leader's failure detector hears which watch streams every member holds; its answer goes back to the member. */
export type ConnectionSink = (report: StreamReport) => StreamReportAnswer;

/** The coordinator's audit trail, when this member runs the coordinator. */
export type AuditSource = (limit: number) => Promise<readonly AuditEntry[]>;

interface NodeStreamCountMessage {
  node_id: string;
  generation: number;
  open_streams: number;
  sequence: number;
}

interface NodeConnectionRequest {
  node_id: string;
  generation: number;
  connected: boolean;
  member_id: string;
  resync: boolean;
  sequence: number;
  counts: NodeStreamCountMessage[];
}

/** At most this many counts in one report: a member's whole table, with room to spare. */
const MAX_COUNTS = 1_000_000;

function validNodeGeneration(nodeId: unknown, generation: unknown, where: string): void {
  const idError = idProblem("node", nodeId);
  if (typeof nodeId !== "string" || idError) {
    throw new InvalidArgumentError(`${where}node_id ${idError}`);
  }
  if (typeof generation !== "number" || !Number.isSafeInteger(generation) || generation < 1) {
    throw new InvalidArgumentError(`${where}generation must be an integer in 1..2^53-1, got ${String(generation)}`);
  }
}

/**
 * The report a NodeConnection request carries. A request of the previous
 * form (no member_id: one stream opened or closed) counts as a report of
 * one pseudo-member, so it works as it did: any close disconnects.
 */
export function streamReportOf(req: NodeConnectionRequest, nextLegacySequence: () => number): StreamReport {
  if (!req.member_id) {
    validNodeGeneration(req.node_id, req.generation, "");
    const sequence = nextLegacySequence();
    return { memberId: "", resync: false, sequence, counts: [{ nodeId: req.node_id, generation: req.generation, open: req.connected ? 1 : 0, sequence }] };
  }
  const memberError = idProblem("member", req.member_id);
  if (memberError) throw new InvalidArgumentError(`member_id ${memberError}`);
  const sequence = req.sequence;
  if (!Number.isSafeInteger(sequence) || sequence < 1) throw new InvalidArgumentError(`sequence must be an integer in 1..2^53-1, got ${String(sequence)}`);
  const counts = req.counts ?? [];
  if (counts.length > MAX_COUNTS) throw new InvalidArgumentError(`counts may hold at most ${MAX_COUNTS} entries, got ${counts.length}`);
  return {
    memberId: req.member_id,
    resync: req.resync === true,
    sequence,
    counts: counts.map((c, i) => {
      validNodeGeneration(c.node_id, c.generation, `counts[${i}].`);
      if (!Number.isSafeInteger(c.sequence) || c.sequence < 1 || c.sequence > sequence) {
        throw new InvalidArgumentError(`counts[${i}].sequence must be an integer from 1 to the report's sequence ${sequence}, got ${String(c.sequence)}`);
      }
      return { nodeId: c.node_id, generation: c.generation, open: c.open_streams, sequence: c.sequence };
    }),
  };
}

/** Sequences of reports in the previous form, which carry none: they apply in arrival order. */
let legacySequence = 0;

export interface AdminServiceDeps {
  readonly node: RaftDriver;
  readonly forwarder: LeaderForwarder;
  readonly onNodeConnection?: ConnectionSink;
  readonly auditLog?: AuditSource;
  /** This member's cluster id when it serves backups (the coordinator); undefined: Snapshot is UNIMPLEMENTED (--app kv). */
  readonly backupClusterId?: string;
  /** Refuses (throws) a member that may not join now (the coordinator: its release must understand the cluster version). */
  readonly checkJoiner?: (id: string, address: string) => Promise<void>;
  /** Fields Status adds to the Raft status (formats, cluster version, cluster id, metrics address). */
  readonly statusExtras?: () => Record<string, unknown>;
}

export function adminServiceHandlers(deps: AdminServiceDeps): grpc.UntypedServiceImplementation {
  const { node, forwarder, onNodeConnection, auditLog } = deps;
  const status = (): Record<string, unknown> => statusOf(node, deps.statusExtras);
  const onLeader =
    (method: string, needsAddress: boolean, run: (req: MemberRequest) => Promise<unknown>) =>
    async (call: grpc.ServerUnaryCall<MemberRequest, unknown>, callback: grpc.sendUnaryData<unknown>): Promise<void> => {
      try {
        const req = call.request;
        const idError = idProblem("member", req.id ?? "");
        if (idError) throw new InvalidArgumentError(`id ${idError}`);
        if (needsAddress && !HOST_PORT.test(req.address ?? "")) {
          throw new InvalidArgumentError(`address must be ${HOST_PORT_RULE}; got ${shownValue(req.address)}`);
        }
        try {
          await run(req);
        } catch (err) {
          if (!(err instanceof NotLeaderError) || !LeaderForwarder.mayForward(call)) throw err;
          callback(null, await forwarder.forward(method, req, call));
          return;
        }
        callback(null, status());
      } catch (err) {
        callback(toGrpcError(err));
      }
    };
  return {
    Status: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => callback(null, status()),
    Snapshot:
      deps.backupClusterId === undefined
        ? (call: grpc.ServerWritableStream<unknown, unknown>) =>
            call.emit("error", { code: 12 /* UNIMPLEMENTED */, details: "this member does not run the coordinator (--app kv): it takes no backups" })
        : snapshotHandler(node, deps.backupClusterId),
    AddLearner: onLeader("AddLearner", true, async (r) => {
      if (node.isLeader()) await deps.checkJoiner?.(r.id, r.address);
      return node.addLearner(r.id, r.address);
    }),
    Promote: onLeader("Promote", false, (r) => node.promote(r.id)),
    Remove: onLeader("Remove", false, (r) => node.remove(r.id)),
    TransferLeadership: onLeader("TransferLeadership", false, (r) => node.transferLeadership(r.id)),
    AuditLog: (call: grpc.ServerUnaryCall<{ limit?: number; page_size?: number; page_token?: string }, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      if (!auditLog) {
        callback({ code: 12 /* UNIMPLEMENTED */, details: "this member does not run the coordinator (--app kv)" });
        return;
      }
      let from: number;
      try {
        // The token holds the index of the next entry to list.
        from = Number(decodePageToken(call.request.page_token, "audit", "") ?? 0);
        if (!Number.isSafeInteger(from) || from < 0) throw new InvalidArgumentError("page_token is not a next_page_token this server gave for audit; start again with an empty page_token");
      } catch (err) {
        callback(toGrpcError(err));
        return;
      }
      const size = pageSize(call.request.page_size, MAX_AUDIT_PAGE);
      auditLog(call.request.limit ?? 0).then(
        (all) => {
          const rest = all.filter((e) => e.index >= from);
          const page = rest.slice(0, size);
          const next = rest[size];
          callback(null, {
            entries: page.map((e) => ({ index: e.index, kind: e.kind, now_ms: e.nowMs, ok: e.ok, code: e.code, summary: e.summary, term: e.term })),
            next_page_token: next ? encodePageToken("audit", "", String(next.index)) : "",
          });
        },
        (err: unknown) => callback(toGrpcError(err)),
      );
    },
    NodeConnection: (call: grpc.ServerUnaryCall<NodeConnectionRequest, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      let report: StreamReport;
      try {
        report = streamReportOf(call.request, () => ++legacySequence);
      } catch (err) {
        callback(toGrpcError(err));
        return;
      }
      if (!node.isLeader() && LeaderForwarder.mayForward(call)) {
        forwarder.forward("NodeConnection", call.request).then(
          (answer) => callback(null, answer),
          (err: unknown) => callback(toGrpcError(err)),
        );
        return;
      }
      callback(null, onNodeConnection?.(report) ?? { resync: false });
    },
  };
}
