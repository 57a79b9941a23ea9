/**
 * Every error the coordinator's state hands to its callers, in one place.
 * Each has a `code` equal to the gRPC status name it becomes at the edge
 * (the service layer translates `code` into `grpc.status[code]`).
 *
 * Inside the replicated apply path these are never thrown past `apply`:
 * a refused command is returned as a `CommandFailure` (data), so every
 * member computes the identical result. Validators and queries throw them;
 * `failureToError` turns a failure back into one for callers that prefer
 * exceptions.
 */

/** The status names a refused command or query can carry. */
export type CoordinatorErrorCode = "INVALID_ARGUMENT" | "NOT_FOUND" | "FAILED_PRECONDITION" | "RESOURCE_EXHAUSTED";

export abstract class CoordinatorError extends Error {
  abstract readonly code: CoordinatorErrorCode;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A field broke a rule; the message names the field, the rule and the value. */
export class InvalidArgumentError extends CoordinatorError {
  readonly code = "INVALID_ARGUMENT";
}

/** The node or meeting named in the request is not known. */
export class NotFoundError extends CoordinatorError {
  readonly code = "NOT_FOUND";
}

/**
 * The caller's view is stale: an old generation or epoch, a node declared
 * dead, a sequence below the stored one. The fencing error.
 */
export class FailedPreconditionError extends CoordinatorError {
  readonly code = "FAILED_PRECONDITION";
}

/** No live node has room, or a checkpoint is over the size limit. */
export class ResourceExhaustedError extends CoordinatorError {
  readonly code = "RESOURCE_EXHAUSTED";
}

/** A refused command or query, as data: what apply returns instead of throwing. */
export interface CommandFailure {
  readonly ok: false;
  readonly code: CoordinatorErrorCode;
  readonly message: string;
}

export function failure(code: CoordinatorErrorCode, message: string): CommandFailure {
  return { ok: false, code, message };
}

/** The failure a caught coordinator error stands for. */
export function failureOf(err: CoordinatorError): CommandFailure {
  return failure(err.code, err.message);
}

/** The named error class for a failure, for callers that throw (the services). */
export function failureToError(f: CommandFailure): CoordinatorError {
  switch (f.code) {
    case "INVALID_ARGUMENT":
      return new InvalidArgumentError(f.message);
    case "NOT_FOUND":
      return new NotFoundError(f.message);
    case "FAILED_PRECONDITION":
      return new FailedPreconditionError(f.message);
    case "RESOURCE_EXHAUSTED":
      return new ResourceExhaustedError(f.message);
    default:
      return assertNever(f.code);
  }
}

/**
 * A state the coordinator's own code should make impossible (a meeting
 * owned by an unknown node, an index applied twice). Thrown, never caught:
 * the member stops rather than diverge from the others.
 */
export class BrokenInvariantError extends Error {
  readonly code = "BROKEN_INVARIANT";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "BrokenInvariantError";
  }
}

/**
 * An entry or snapshot in a format newer than this build reads: written
 * because the cluster version was raised past this release (a downgrade
 * after an upgrade was finished). A broken invariant: the member stops
 * rather than apply the log differently from the others.
 */
export class NewerFormatError extends BrokenInvariantError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NewerFormatError";
  }
}

/** For exhaustive switches: the compiler proves this is unreachable. */
export function assertNever(value: never): never {
  throw new BrokenInvariantError(`unexpected value ${JSON.stringify(value)}`);
}
