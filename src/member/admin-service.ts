/**
 * The gRPC handlers of MemberAdmin (proto/member.proto): status and
 * runtime membership changes. Changes need the leader; followers forward.
 */
import type * as grpc from "@grpc/grpc-js";
import type { AuditEntry } from "../coordinator/model.js";
import { NotLeaderError } from "../raft/errors.js";
import type { RaftDriver } from "../raft-runtime/driver.js";
import { InvalidArgumentError, toGrpcError } from "./grpc-status.js";
import { LeaderForwarder } from "./leader-forwarder.js";

const ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * A value as a message shows it: cut short (a 1 MB id must not make a 1 MB
 * status message), then quoted, which escapes a surrogate the cut split.
 */
function shownValue(value: unknown): string {
  if (typeof value !== "string") return String(value);
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}
const HOST_PORT = /^[A-Za-z0-9.-]+:\d{1,5}$/;

interface MemberRequest {
  id: string;
  address: string;
}

export function statusOf(node: RaftDriver): Record<string, unknown> {
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
  };
}

/** Where a leader's failure detector hears of watch streams opening and breaking on any member. */
export type ConnectionSink = (nodeId: string, generation: number, connected: boolean) => void;

/** The coordinator's audit trail, when this member runs the coordinator. */
export type AuditSource = (limit: number) => Promise<readonly AuditEntry[]>;

export function adminServiceHandlers(
  node: RaftDriver,
  forwarder: LeaderForwarder,
  onNodeConnection?: ConnectionSink,
  auditLog?: AuditSource,
): grpc.UntypedServiceImplementation {
  const onLeader =
    (method: string, needsAddress: boolean, run: (req: MemberRequest) => Promise<unknown>) =>
    async (call: grpc.ServerUnaryCall<MemberRequest, unknown>, callback: grpc.sendUnaryData<unknown>): Promise<void> => {
      try {
        const req = call.request;
        if (!ID.test(req.id ?? "")) throw new InvalidArgumentError(`id must match ${ID.source}, got ${shownValue(req.id)}`);
        if (needsAddress && !HOST_PORT.test(req.address ?? "")) {
          throw new InvalidArgumentError(`address must be host:port, got ${shownValue(req.address)}`);
        }
        try {
          await run(req);
        } catch (err) {
          if (!(err instanceof NotLeaderError) || !LeaderForwarder.mayForward(call)) throw err;
          callback(null, await forwarder.forward(method, req, call));
          return;
        }
        callback(null, statusOf(node));
      } catch (err) {
        callback(toGrpcError(err));
      }
    };
  return {
    Status: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => callback(null, statusOf(node)),
    AddLearner: onLeader("AddLearner", true, (r) => node.addLearner(r.id, r.address)),
    Promote: onLeader("Promote", false, (r) => node.promote(r.id)),
    Remove: onLeader("Remove", false, (r) => node.remove(r.id)),
    TransferLeadership: onLeader("TransferLeadership", false, (r) => node.transferLeadership(r.id)),
    AuditLog: (call: grpc.ServerUnaryCall<{ limit: number }, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      if (!auditLog) {
        callback({ code: 12 /* UNIMPLEMENTED */, details: "this member does not run the coordinator (--app kv)" });
        return;
      }
      auditLog(call.request.limit ?? 0).then(
        (entries) =>
          callback(null, {
            entries: entries.map((e) => ({ index: e.index, kind: e.kind, now_ms: e.nowMs, ok: e.ok, code: e.code, summary: e.summary })),
          }),
        (err: unknown) => callback(toGrpcError(err)),
      );
    },
    NodeConnection: (
      call: grpc.ServerUnaryCall<{ node_id: string; generation: number; connected: boolean }, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) => {
      const { node_id, generation, connected } = call.request;
      // A malformed report was answered OK and silently dropped (found by test/fuzz-grpc.test.ts): refuse it, naming the field.
      if (!ID.test(node_id ?? "")) {
        callback(toGrpcError(new InvalidArgumentError(`node_id must match ${ID.source}, got ${shownValue(node_id)}`)));
        return;
      }
      if (!Number.isSafeInteger(generation) || generation < 1) {
        callback(toGrpcError(new InvalidArgumentError(`generation must be an integer in 1..2^53-1, got ${String(generation)}`)));
        return;
      }
      if (!node.isLeader() && LeaderForwarder.mayForward(call)) {
        forwarder.forward("NodeConnection", call.request).then(
          () => callback(null, {}),
          (err: unknown) => callback(toGrpcError(err)),
        );
        return;
      }
      onNodeConnection?.(node_id, generation, connected);
      callback(null, {});
    },
  };
}
