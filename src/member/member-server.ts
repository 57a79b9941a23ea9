/**
 * The gRPC server of a member process: grpc-js's Server, except that a
 * request whose bytes do not decode as its message type is answered with
 * INVALID_ARGUMENT instead of INTERNAL.
 *
 * grpc-js answers a request its deserializer throws on with INTERNAL
 * ("Error deserializing request"): the status that says the server broke,
 * sent for what is the caller's mistake (truncated or garbled protobuf,
 * wrong wire types; found by test/fuzz-grpc.test.ts). Every service added
 * here (ours, the Raft transport's, health and reflection) gets
 * deserializers that hand a `MalformedRequest` to the method instead of
 * throwing, and handlers wrapped to refuse it before the method proper
 * sees it. Created in Member.start(), before any service is added.
 *
 * The same wrappers cut every error's message to MAX_DETAILS_CHARS. A
 * message travels in the grpc-message trailer, and one that quotes a huge
 * hostile value (a 300 KB service name in a health check, a 100 KB target
 * id) is a trailer over the peer's 64 KB header limit: the peer tears down
 * the whole HTTP/2 connection, failing every other call on it, a
 * follower's forwarding channel to the leader included (found by
 * test/fuzz-grpc.test.ts).
 */
import * as grpc from "@grpc/grpc-js";

/** What a method receives in place of a request whose bytes do not decode. */
class MalformedRequest {
  constructor(
    readonly typeName: string,
    readonly reason: string,
  ) {}

  get status(): Pick<grpc.StatusObject, "code" | "details"> {
    return { code: grpc.status.INVALID_ARGUMENT, details: `request is not a valid ${this.typeName} message: ${this.reason}` };
  }
}

/** Longest error message sent; percent-encoded it stays far below the 64 KB header limit. */
const MAX_DETAILS_CHARS = 1_000;

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** An error message cut to MAX_DETAILS_CHARS and well-formed (see capStatus); also for statuses sent inside messages. */
export function capDetails(details: string): string {
  const cut = details.length > MAX_DETAILS_CHARS ? `${details.slice(0, MAX_DETAILS_CHARS)}… (${details.length} characters)` : details;
  return cut.replace(LONE_SURROGATE, "\ufffd");
}

/**
 * `err` as grpc-js will read it, its message cut to MAX_DETAILS_CHARS and
 * well-formed: grpc-js percent-encodes the message with encodeURI, which
 * throws on a lone surrogate (half of an emoji cut off by a slice), and
 * that throw, inside grpc-js, ends the process.
 */
function capStatus(err: unknown): unknown {
  if (err === null || typeof err !== "object") return err;
  const e = err as { code?: unknown; details?: unknown; message?: unknown; metadata?: unknown };
  const details = typeof e.details === "string" ? e.details : typeof e.message === "string" ? e.message : undefined;
  if (details === undefined) return err;
  const wellFormed = capDetails(details);
  if (wellFormed === details) return err;
  return { code: e.code, details: wellFormed, ...(e.metadata ? { metadata: e.metadata } : {}) };
}

/** The status code of an error a handler answers with (UNKNOWN when it carries none). */
function statusCodeOf(err: unknown): number {
  const code = err !== null && typeof err === "object" ? (err as { code?: unknown }).code : undefined;
  return typeof code === "number" && Number.isInteger(code) ? code : grpc.status.UNKNOWN;
}

type AnyMethod = grpc.MethodDefinition<unknown, unknown> & { requestType?: { type?: { name?: unknown } } };
type Handler = (...args: unknown[]) => void;

function guardedDeserializer(method: AnyMethod): (bytes: Buffer) => unknown {
  const name = method.requestType?.type?.name;
  const typeName = typeof name === "string" ? name : `request of ${method.path}`;
  return (bytes) => {
    try {
      return method.requestDeserialize(bytes);
    } catch (err) {
      return new MalformedRequest(typeName, err instanceof Error ? err.message : String(err));
    }
  };
}

/**
 * Unary and server-streaming calls carry their one request on the call;
 * streaming requests arrive through the stream's push(), which is where a
 * malformed one is stopped (with every message after it: the stream ends).
 */
function guardedHandler(method: AnyMethod, handler: Handler, self: unknown, done: (code: number) => void): Handler {
  /** Streams end with a status through an 'error' event (grpc-js's convention): its message is cut too. */
  const capErrors = (call: NodeJS.EventEmitter, countsItsEnd: boolean): void => {
    // A call answered through a callback (unary, client streaming) is counted there.
    let counted = !countsItsEnd;
    const count = (code: number): void => {
      if (counted) return;
      counted = true;
      done(code);
    };
    const emit = call.emit.bind(call);
    call.emit = (event: string | symbol, ...args: unknown[]): boolean => {
      if (event === "error") {
        count(statusCodeOf(args[0]));
        return emit("error", capStatus(args[0]));
      }
      if (event === "finish") count(grpc.status.OK);
      else if (event === "cancelled") count(grpc.status.CANCELLED);
      return emit(event, ...args);
    };
  };
  const capCallback =
    (callback: grpc.sendUnaryData<unknown>): grpc.sendUnaryData<unknown> =>
    (err, ...rest) => {
      done(err ? statusCodeOf(err) : grpc.status.OK);
      callback(capStatus(err) as grpc.ServerErrorResponse | null, ...rest);
    };
  if (!method.requestStream) {
    return (call, ...rest) => {
      const request = (call as { request: unknown }).request;
      if (method.responseStream) capErrors(call as NodeJS.EventEmitter, true);
      const callback = method.responseStream ? undefined : capCallback(rest[0] as grpc.sendUnaryData<unknown>);
      if (!(request instanceof MalformedRequest)) return handler.apply(self, callback ? [call, callback] : [call, ...rest]);
      if (callback) callback(request.status);
      else (call as NodeJS.EventEmitter).emit("error", request.status);
    };
  }
  return (call, ...rest) => {
    const stream = call as grpc.ServerDuplexStream<unknown, unknown>;
    capErrors(stream, method.responseStream);
    // The method and this guard may both answer a client stream: the first answer counts.
    let answered = false;
    const callback = rest[0] === undefined ? undefined : capCallback(rest[0] as grpc.sendUnaryData<unknown>);
    const once: grpc.sendUnaryData<unknown> = (...args) => {
      if (answered) return;
      answered = true;
      callback!(...args);
    };
    let refused = false;
    const push = stream.push.bind(stream);
    stream.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
      if (refused) return chunk === null ? push(null) : true;
      if (!(chunk instanceof MalformedRequest)) return push(chunk, encoding);
      refused = true;
      if (method.responseStream) stream.emit("error", chunk.status);
      else once(chunk.status);
      return true;
    };
    return method.responseStream ? handler.call(self, stream) : handler.call(self, stream, once);
  };
}

export class MemberServer extends grpc.Server {
  /** Told of every call a handler answered, with its method path and status code (the member's metrics). */
  onCallDone: ((path: string, code: number) => void) | undefined;

  override addService(service: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation): void {
    const guardedService: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
    const guardedImplementation: grpc.UntypedServiceImplementation = {};
    for (const [name, definition] of Object.entries(service)) {
      const method = definition as AnyMethod;
      guardedService[name] = { ...method, requestDeserialize: guardedDeserializer(method) };
      // Looked up as grpc-js does: by name, then by the .proto's original name.
      const handler = (implementation[name] ?? (method.originalName ? implementation[method.originalName] : undefined)) as Handler | undefined;
      const path = method.path;
      const done = (code: number): void => this.onCallDone?.(path, code);
      if (handler) guardedImplementation[name] = guardedHandler(method, handler, implementation, done) as grpc.UntypedHandleCall;
    }
    super.addService(guardedService, guardedImplementation);
  }
}
