/**
 * gRPC calls with arbitrary request bytes, for the fuzz tests: a plain
 * `grpc.Client` with identity serializers, so what reaches a method is
 * exactly the bytes given (truncated or garbled protobuf included), and
 * every call bounded by a deadline. Plus a small protobuf wire writer for
 * messages a generated client would never produce (wrong wire types,
 * overlong varints, lengths past the end).
 */
import type { ClientHttp2Session } from "node:http2";
import * as grpc from "@grpc/grpc-js";

export type CallKind = "unary" | "server-stream" | "client-stream" | "bidi";

/** How a call ended. `code` is a grpc.status; `messages` counts the answers received before it. */
export interface CallOutcome {
  readonly code: number;
  readonly details: string;
  readonly messages: number;
  /** For server streams cut short by us after `openMs`: the stream was open and well. */
  readonly cutOpen: boolean;
}

const identity = (b: Buffer): Buffer => b;

export function kindOf(def: { requestStream: boolean; responseStream: boolean }): CallKind {
  if (def.requestStream) return def.responseStream ? "bidi" : "client-stream";
  return def.responseStream ? "server-stream" : "unary";
}

/**
 * Sends `frames` (one for unary and server-stream methods) to `path` and
 * waits for the status. A server stream that is still open after `openMs`
 * (a valid watch, say) is cancelled by us and reported with `cutOpen`.
 */
export function rawCall(client: grpc.Client, path: string, kind: CallKind, frames: readonly Buffer[], timeoutMs: number, openMs = 300): Promise<CallOutcome> {
  const deadline = Date.now() + timeoutMs;
  return new Promise<CallOutcome>((resolve) => {
    let messages = 0;
    let settled = false;
    const done = (code: number, details: string, cutOpen = false): void => {
      if (settled) return;
      settled = true;
      resolve({ code, details, messages, cutOpen });
    };
    const onStatus = (s: grpc.StatusObject): void => done(s.code, s.details);
    switch (kind) {
      case "unary": {
        const call = client.makeUnaryRequest(path, identity, identity, frames[0] ?? Buffer.alloc(0), new grpc.Metadata(), { deadline }, (err) => {
          if (!err) messages++;
        });
        call.on("status", onStatus);
        return;
      }
      case "server-stream": {
        const call = client.makeServerStreamRequest(path, identity, identity, frames[0] ?? Buffer.alloc(0), new grpc.Metadata(), { deadline });
        const cut = setTimeout(() => {
          if (settled) return;
          done(grpc.status.OK, "open", true);
          call.cancel();
        }, openMs);
        call.on("data", () => messages++);
        call.on("error", () => undefined);
        call.on("status", (s: grpc.StatusObject) => {
          clearTimeout(cut);
          onStatus(s);
        });
        return;
      }
      case "client-stream": {
        const call = client.makeClientStreamRequest(path, identity, identity, new grpc.Metadata(), { deadline }, (err) => {
          if (!err) messages++;
        });
        call.on("status", onStatus);
        call.on("error", () => undefined);
        for (const f of frames) call.write(f);
        call.end();
        return;
      }
      case "bidi": {
        const call = client.makeBidiStreamRequest(path, identity, identity, new grpc.Metadata(), { deadline });
        const cut = setTimeout(() => {
          if (settled) return;
          done(grpc.status.OK, "open", true);
          call.cancel();
        }, openMs);
        call.on("data", () => messages++);
        call.on("error", () => undefined);
        call.on("status", (s: grpc.StatusObject) => {
          clearTimeout(cut);
          onStatus(s);
        });
        for (const f of frames) call.write(f);
        call.end();
        return;
      }
    }
  });
}

// ---- protobuf wire writer ----------------------------------------------------

/** A field as written on the wire: number, wire type (0..7, 6 and 7 are invalid), payload. */
export type WireField =
  | { readonly field: number; readonly wire: 0; readonly varint: bigint }
  | { readonly field: number; readonly wire: 1; readonly fixed: Uint8Array }
  | { readonly field: number; readonly wire: 2; readonly bytes: Uint8Array; readonly lengthDelta?: number }
  | { readonly field: number; readonly wire: 3 | 4 | 6 | 7 }
  | { readonly field: number; readonly wire: 5; readonly fixed: Uint8Array };

export function varint(value: bigint, overlong = 0): number[] {
  // Two's complement over 64 bits for negative values, as protobuf does.
  let v = BigInt.asUintN(64, value);
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n || overlong > 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0n);
  for (let i = 0; i < overlong; i++) out.push(i === overlong - 1 ? 0x00 : 0x80);
  return out;
}

/** Encodes fields as given, with no regard for what the message type expects. */
export function writeFields(fields: readonly WireField[]): Buffer {
  const out: number[] = [];
  for (const f of fields) {
    out.push(...varint(BigInt((f.field << 3) | f.wire)));
    switch (f.wire) {
      case 0:
        out.push(...varint(f.varint));
        break;
      case 1:
      case 5:
        out.push(...f.fixed);
        break;
      case 2:
        out.push(...varint(BigInt(f.bytes.length + (f.lengthDelta ?? 0))));
        out.push(...f.bytes);
        break;
      default:
        break;
    }
  }
  return Buffer.from(out);
}

// ---- below gRPC: HTTP/2 requests with broken gRPC framing --------------------------------

/** How an HTTP/2 request to a gRPC path ended. */
export interface H2Outcome {
  /** The HTTP status, 0 when the stream ended without headers. */
  readonly http: number;
  /** grpc-status from headers or trailers, undefined when none came. */
  readonly grpcStatus: number | undefined;
  readonly grpcMessage: string;
  /** The stream was reset or the session failed instead of answering. */
  readonly reset: string | undefined;
  readonly timedOut: boolean;
}

/** One HTTP/2 POST to `path` on `session`, with `headers` laid over a gRPC request's and `body` as the DATA. */
export function h2Call(session: ClientHttp2Session, path: string, headers: Record<string, string>, body: Buffer, timeoutMs: number): Promise<H2Outcome> {
  return new Promise<H2Outcome>((resolve) => {
    let http = 0;
    let grpcStatus: number | undefined;
    let grpcMessage = "";
    let reset: string | undefined;
    let settled = false;
    const read = (h: Record<string, unknown>): void => {
      if (h["grpc-status"] !== undefined) grpcStatus = Number(h["grpc-status"]);
      if (typeof h["grpc-message"] === "string") grpcMessage = decodeURIComponent(h["grpc-message"]);
    };
    const finish = (timedOut: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ http, grpcStatus, grpcMessage, reset, timedOut });
    };
    const req = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...headers });
    const timer = setTimeout(() => {
      req.close();
      finish(true);
    }, timeoutMs);
    req.on("response", (h) => {
      http = Number(h[":status"] ?? 0);
      read(h);
    });
    req.on("trailers", read);
    req.on("data", () => undefined);
    req.on("error", (err: Error) => (reset = err.message));
    req.on("close", () => {
      if (req.rstCode && req.rstCode !== 0 && reset === undefined) reset = `RST_STREAM ${req.rstCode}`;
      finish(false);
    });
    req.end(body);
  });
}
