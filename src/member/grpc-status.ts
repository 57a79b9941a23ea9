/**
 * The one place where the Raft layer's errors become gRPC statuses.
 * No quorum, no leader, a dropped or timed-out proposal: UNAVAILABLE, so
 * callers retry (possibly elsewhere); never a hang past the deadline.
 */
import * as grpc from "@grpc/grpc-js";
import { CoordinatorError } from "../coordinator/errors.js";
import {
  ConfChangeError,
  ConfigError,
  NotLeaderError,
  ProposalDroppedError,
  RaftError,
  RaftTimeoutError,
  StoppedError,
} from "../raft/errors.js";
import { PageTokenError } from "../wire/paging.js";

export class InvalidArgumentError extends Error {
  readonly code = "INVALID_ARGUMENT";
}

export interface GrpcError {
  code: grpc.status;
  details: string;
}

export function toGrpcError(err: unknown): GrpcError {
  if (err instanceof InvalidArgumentError || err instanceof PageTokenError) return { code: grpc.status.INVALID_ARGUMENT, details: err.message };
  // The coordinator's errors carry the status name as their code.
  if (err instanceof CoordinatorError) return { code: grpc.status[err.code], details: err.message };
  if (err instanceof NotLeaderError || err instanceof ProposalDroppedError || err instanceof StoppedError) {
    return { code: grpc.status.UNAVAILABLE, details: err.message };
  }
  if (err instanceof RaftTimeoutError) return { code: grpc.status.UNAVAILABLE, details: `no quorum answered in time: ${err.message}` };
  if (err instanceof ConfChangeError || err instanceof ConfigError) {
    return { code: grpc.status.FAILED_PRECONDITION, details: err.message };
  }
  if (err instanceof RaftError) return { code: grpc.status.UNAVAILABLE, details: err.message };
  if (typeof err === "object" && err !== null && "code" in err && typeof (err as { code: unknown }).code === "number") {
    // Already a gRPC error (e.g. from a forwarded call): pass it through.
    const e = err as { code: grpc.status; details?: string; message?: string };
    return { code: e.code, details: e.details ?? e.message ?? "forwarded call failed" };
  }
  return { code: grpc.status.INTERNAL, details: err instanceof Error ? err.message : String(err) };
}
