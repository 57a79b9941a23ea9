/**
 * Every error the node agent hands to its host, in one place. Each has a
 * stable `code`; the sidecar's HTTP edge translates them into statuses.
 */
import * as grpc from "@grpc/grpc-js";

export abstract class AgentError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** An option broke a rule; the message names the field and the value. */
export class AgentConfigError extends AgentError {
  readonly code = "CONFIG";
}

/** The agent was stopped (or never started) while the operation waited. */
export class AgentStoppedError extends AgentError {
  readonly code = "STOPPED";
}

/** The coordinator answered something outside the contract (API.md); the answer was ignored. */
export class BadResponseError extends AgentError {
  readonly code = "BAD_RESPONSE";
}

/** The meeting is not held by this node (never assigned, revoked, or moved). */
export class MeetingNotHeldError extends AgentError {
  readonly code = "NOT_HELD";
  constructor(readonly meetingId: string) {
    super(`meeting ${meetingId} is not held by this node`);
  }
}

/** The meeting is being handed over to another node: it takes no more checkpoints here. */
export class MeetingMovingError extends AgentError {
  readonly code = "MOVING";
  constructor(readonly meetingId: string) {
    super(`meeting ${meetingId} is being handed over to another node`);
  }
}

/** A host callback (onAssigned, onRevoked, getState, onHandover) threw or rejected. */
export class HostCallbackError extends AgentError {
  readonly code = "HOST_CALLBACK";
}

/**
 * A coordinator call ended with a gRPC status other than OK. `status` is the
 * gRPC code (`grpc.status`), `address` the member that answered (or failed to).
 */
export class CoordinatorCallError extends AgentError {
  readonly code = "COORDINATOR_CALL";
  constructor(
    readonly method: string,
    readonly address: string,
    readonly status: grpc.status,
    details: string,
    options?: { cause?: unknown },
  ) {
    super(`${method} at ${address} failed: ${grpc.status[status] ?? status}: ${details}`, options);
  }
}

/** Wraps whatever a grpc-js call rejected with into a CoordinatorCallError. */
export function toCallError(err: unknown, method: string, address: string): CoordinatorCallError {
  if (err instanceof CoordinatorCallError) return err;
  const e = err as { code?: unknown; details?: unknown; message?: unknown } | null;
  const status = typeof e?.code === "number" ? (e.code as grpc.status) : grpc.status.UNKNOWN;
  const details = typeof e?.details === "string" ? e.details : typeof e?.message === "string" ? e.message : String(err);
  return new CoordinatorCallError(method, address, status, details, { cause: err });
}

/**
 * Whether an error means this node (or its generation) is no longer known
 * to the coordinator as alive: FAILED_PRECONDITION (stale generation,
 * declared dead) or NOT_FOUND (unknown node). The cure is Register again.
 */
export function isFenced(err: unknown): boolean {
  return (
    err instanceof CoordinatorCallError && (err.status === grpc.status.FAILED_PRECONDITION || err.status === grpc.status.NOT_FOUND)
  );
}

/**
 * Whether the coordinator refused a call only because the group runs an
 * older cluster version than the call needs (src/coordinator/command-gates.ts
 * words it so): the version rises by itself, so waiting is the answer.
 */
export function isWaitForClusterVersion(err: unknown): boolean {
  return err instanceof CoordinatorCallError && err.status === grpc.status.FAILED_PRECONDITION && /needs cluster version \d+, and the cluster runs at cluster version \d+/.test(err.message);
}
