/**
 * Every error the gateway produces, in one place, and the one translation of
 * errors into HTTP answers (`toHttpError`). Each error class carries its HTTP
 * status, the `error` code of the JSON body (API.md: `{"error", "message"}`)
 * and, for the retryable ones, the Retry-After seconds.
 */
import * as grpc from "@grpc/grpc-js";

export abstract class GatewayError extends Error {
  abstract readonly code: string;
  abstract readonly status: number;
  /** Seconds for Retry-After; set on answers the client should retry. */
  readonly retryAfterS: number | undefined = undefined;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A config field broke a rule; `field` names it and the message says the rule and the value. */
export class GatewayConfigError extends GatewayError {
  readonly code = "config";
  readonly status = 500;
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** The meeting id segment does not match API.md's meeting id pattern. */
export class InvalidMeetingIdError extends GatewayError {
  readonly code = "invalid_meeting_id";
  readonly status = 400;
}

/** The path tries to leave the meeting's subtree (dot segments, encoded slashes or backslashes). */
export class BadPathError extends GatewayError {
  readonly code = "bad_path";
  readonly status = 400;
}

/** The meeting does not exist and this gateway does not create meetings. */
export class MeetingNotFoundError extends GatewayError {
  readonly code = "meeting_not_found";
  readonly status = 404;
}

/** This client created too many meetings lately. */
export class CreateRateLimitedError extends GatewayError {
  readonly code = "rate_limited";
  readonly status = 429;
  override readonly retryAfterS: number;
  constructor(message: string, retryAfterS: number) {
    super(message);
    this.retryAfterS = retryAfterS;
  }
}

/** The coordinator has no live node with room for a new meeting. */
export class NoRoomError extends GatewayError {
  readonly code = "no_room";
  readonly status = 503;
  override readonly retryAfterS = 5;
}

/** No coordinator member answered with a quorum behind it within the deadline. */
export class NoQuorumError extends GatewayError {
  readonly code = "no_quorum";
  readonly status = 503;
  override readonly retryAfterS = 1;
}

/** The meeting's host did not answer (refused, reset, timed out, or not holding it) and no other host has it yet. */
export class UpstreamUnavailableError extends GatewayError {
  readonly code = "upstream_unavailable";
  readonly status = 503;
  override readonly retryAfterS = 1;
}

/** The coordinator answered outside the contract (API.md); nothing was proxied. */
export class CoordinatorAnswerError extends GatewayError {
  readonly code = "coordinator_error";
  readonly status = 502;
}

/** No route of the gateway matches the method and path. */
export class RouteNotFoundError extends GatewayError {
  readonly code = "not_found";
  readonly status = 404;
}

/** The request's headers exceed the server's limit (maxHeaderSize). */
export class HeadersTooLargeError extends GatewayError {
  readonly code = "headers_too_large";
  readonly status = 431;
}

/** The client sent something that is not a valid HTTP/1.1 request, or sent it too slowly. */
export class MalformedRequestError extends GatewayError {
  readonly code = "bad_request";
  readonly status = 400;
}

/** The request body is larger than maxBodyBytes (fastify's own limit answers the same code). */
export class BodyTooLargeError extends GatewayError {
  readonly code = "body_too_large";
  readonly status = 413;
}

/** An Expect header other than 100-continue: nothing here can meet it. */
export class ExpectationFailedError extends GatewayError {
  readonly code = "expectation_failed";
  readonly status = 417;
}

export class RequestTimeoutError extends GatewayError {
  readonly code = "request_timeout";
  readonly status = 408;
}

/** The meeting's host address is refused by the node address policy: nothing was sent to it. */
export class NodeAddressRefusedError extends GatewayError {
  readonly code = "node_address_refused";
  readonly status = 502;
}

/** The request already passed a convene gateway (its Via header carries a gateway's mark): proxying it again would loop. */
export class LoopDetectedError extends GatewayError {
  readonly code = "loop_detected";
  readonly status = 508;
}

/** An operator page (dashboard, metrics) that this gateway does not serve to this client. */
export class OperatorPageForbiddenError extends GatewayError {
  readonly code = "forbidden";
  readonly status = 403;
}

/** An operator page behind a token, asked without the right one. */
export class OperatorTokenRequiredError extends GatewayError {
  readonly code = "unauthorized";
  readonly status = 401;
}

/** The gateway is shutting down. */
export class GatewayClosedError extends GatewayError {
  readonly code = "closing";
  readonly status = 503;
  override readonly retryAfterS = 1;
}

/**
 * What a failed Coordinator call means for the gateway's client. Called by
 * the route resolver with the last error of its attempts.
 */
export function fromCoordinatorStatus(status: grpc.status, details: string, meetingId: string, cause: unknown): GatewayError {
  switch (status) {
    case grpc.status.NOT_FOUND:
      return new MeetingNotFoundError(`meeting ${meetingId} does not exist and this gateway does not create meetings`, { cause });
    case grpc.status.RESOURCE_EXHAUSTED:
      return new NoRoomError(`no live meeting server has room for meeting ${meetingId}: ${details}`, { cause });
    case grpc.status.UNAVAILABLE:
    case grpc.status.DEADLINE_EXCEEDED:
    case grpc.status.CANCELLED:
    case grpc.status.INTERNAL:
      return new NoQuorumError(`the coordinator cannot answer now (no quorum or no member reachable): ${details}`, { cause });
    case grpc.status.INVALID_ARGUMENT:
      return new InvalidMeetingIdError(`the coordinator refused meeting id ${JSON.stringify(meetingId)}: ${details}`, { cause });
    default:
      return new CoordinatorAnswerError(`the coordinator answered ${grpc.status[status] ?? status} for meeting ${meetingId}: ${details}`, { cause });
  }
}

export interface HttpError {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly retryAfterS: number | undefined;
}

/** Fastify's own errors (framework, body parser, router) by their code. */
const FASTIFY_CODES: Record<string, { status: number; code: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: "body_too_large" },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: "bad_content_length" },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: "bad_body" },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: "unsupported_media_type" },
  FST_ERR_BAD_URL: { status: 400, code: "bad_url" },
  FST_ERR_ASYNC_CONSTRAINT: { status: 500, code: "internal" },
};

/**
 * The HTTP answer for any error the gateway's routes throw: its own errors
 * as declared, fastify's by their code or status, anything else 500.
 */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof GatewayError) return { status: err.status, code: err.code, message: err.message, retryAfterS: err.retryAfterS };
  const e = err as { code?: unknown; statusCode?: unknown; message?: unknown } | null;
  const message = typeof e?.message === "string" ? e.message : String(err);
  const known = typeof e?.code === "string" ? FASTIFY_CODES[e.code] : undefined;
  if (known) return { ...known, message, retryAfterS: undefined };
  const status = typeof e?.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 600 ? e.statusCode : 500;
  return { status, code: status < 500 ? "bad_request" : "internal", message: status < 500 ? message : `internal error: ${message}`, retryAfterS: undefined };
}

/** The JSON body of an error answer. */
export function errorBody(code: string, message: string): string {
  return JSON.stringify({ error: code, message });
}

/**
 * A Coordinator or RouteFeed call ended with a gRPC status other than OK.
 * Internal to the gateway: the resolver turns it into a GatewayError with
 * `fromCoordinatorStatus`.
 */
export class CoordinatorCallError extends Error {
  constructor(
    readonly method: string,
    readonly address: string,
    readonly status: grpc.status,
    readonly details: string,
    options?: { cause?: unknown },
  ) {
    super(`${method} at ${address} failed: ${grpc.status[status] ?? status}: ${details}`, options);
    this.name = "CoordinatorCallError";
  }
}

/** Wraps whatever a grpc-js call rejected with. */
export function toCallError(err: unknown, method: string, address: string): CoordinatorCallError {
  if (err instanceof CoordinatorCallError) return err;
  const e = err as { code?: unknown; details?: unknown; message?: unknown } | null;
  const status = typeof e?.code === "number" ? (e.code as grpc.status) : grpc.status.UNKNOWN;
  const details = typeof e?.details === "string" ? e.details : typeof e?.message === "string" ? e.message : String(err);
  return new CoordinatorCallError(method, address, status, details, { cause: err });
}
