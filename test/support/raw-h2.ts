/**
 * A raw HTTP/2 client for requests Node's own client refuses to send, such
 * as a header repeated that RFC 9110 allows once (node:http2 throws
 * ERR_HTTP2_HEADER_SINGLE_VALUE for a second "authorization"). It writes
 * the frames itself (RFC 9113): the preface, SETTINGS, one HEADERS frame
 * whose fields are HPACK literals without indexing or Huffman coding
 * (RFC 7541 §6.2.2), and the DATA frames of a gRPC request. It does not
 * decode the answer's headers (that needs HPACK's Huffman table): it
 * reports which frames came back on the stream, which tells a gRPC call
 * that answered a message (DATA) from one refused with a status alone.
 *
 * Below rawH2Request, the frames themselves, for the member's edge test
 * (test/abrupt-member.test.ts): a client that stops in the middle of the
 * preface, of a frame or of a message, or stops reading while the server
 * answers, which node:http2 (it reads its socket itself) cannot.
 */
import { connect as connectTcp } from "node:net";
import { connect as connectTls } from "node:tls";
import { writeFields } from "./raw-grpc.js";

export const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8 } as const;
const FLAG = { END_STREAM: 1, ACK: 1, END_HEADERS: 4 } as const;

/** HPACK integer with an n-bit prefix (RFC 7541 §5.1). */
function hpackInteger(value: number, prefixBits: number, firstByteFlags: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([firstByteFlags | value]);
  const bytes = [firstByteFlags | max];
  let rest = value - max;
  while (rest >= 128) {
    bytes.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

function hpackString(text: string): Buffer {
  const bytes = Buffer.from(text, "latin1");
  return Buffer.concat([hpackInteger(bytes.length, 7, 0), bytes]);
}

/** A header block of literal fields without indexing, new names, in the order given (repeats kept). */
export function headerBlock(fields: readonly (readonly [string, string])[]): Buffer {
  return Buffer.concat(fields.flatMap(([name, value]) => [Buffer.from([0]), hpackString(name), hpackString(value)]));
}

function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([header, payload]);
}

/** A gRPC message on the wire: uncompressed flag, 4-byte length, the protobuf bytes. */
export function grpcMessage(protobuf: Buffer = Buffer.alloc(0)): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(protobuf.length, 1);
  return Buffer.concat([prefix, protobuf]);
}

export interface RawH2Answer {
  /** Frame types received on stream 1, in order ("HEADERS", "DATA", "RST_STREAM"). */
  readonly frames: string[];
  /** Bytes of DATA on stream 1: more than 0 means the server answered a message. */
  readonly dataBytes: number;
  /** Whether the stream ended (END_STREAM or RST_STREAM) before the timeout. */
  readonly ended: boolean;
}

export interface RawH2Target {
  readonly host: string;
  readonly port: number;
  /** TLS with ALPN h2, verifying against this CA; plaintext (prior knowledge) when absent. */
  readonly ca?: Buffer;
}

/** Sends one request on stream 1 with `fields` (pseudo-headers first) and `body` as its DATA, and collects the answer. */
export function rawH2Request(target: RawH2Target, fields: readonly (readonly [string, string])[], body: Buffer, timeoutMs = 5000): Promise<RawH2Answer> {
  return new Promise((resolve, reject) => {
    const socket = target.ca
      ? connectTls({ host: target.host, port: target.port, ca: target.ca, ALPNProtocols: ["h2"], servername: "localhost" })
      : connectTcp({ host: target.host, port: target.port });
    const frames: string[] = [];
    let dataBytes = 0;
    let pending = Buffer.alloc(0);
    const finish = (ended: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ frames, dataBytes, ended });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once(target.ca ? "secureConnect" : "connect", () => {
      socket.write(Buffer.concat([
        PREFACE,
        frame(FRAME.SETTINGS, 0, 0),
        frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, headerBlock(fields)),
        frame(FRAME.DATA, FLAG.END_STREAM, 1, body),
      ]));
    });
    socket.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 9) {
        const length = pending.readUIntBE(0, 3);
        if (pending.length < 9 + length) break;
        const type = pending[3]!;
        const flags = pending[4]!;
        const stream = pending.readUInt32BE(5) & 0x7fffffff;
        const payload = pending.subarray(9, 9 + length);
        pending = pending.subarray(9 + length);
        if (type === FRAME.SETTINGS && (flags & FLAG.ACK) === 0) socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
        if (type === FRAME.PING && (flags & FLAG.ACK) === 0) socket.write(frame(FRAME.PING, FLAG.ACK, 0, Buffer.from(payload)));
        if (type === FRAME.GOAWAY) return finish(false);
        if (stream !== 1) continue;
        const name = Object.entries(FRAME).find(([, t]) => t === type)?.[0] ?? `type ${type}`;
        frames.push(name);
        if (type === FRAME.DATA) dataBytes += length;
        if (type === FRAME.RST_STREAM || ((type === FRAME.DATA || type === FRAME.HEADERS) && (flags & FLAG.END_STREAM) !== 0)) return finish(true);
      }
    });
  });
}

/** The fields of a gRPC unary call to `path` at `authority`, then `extra` in order. */
export function grpcRequestFields(path: string, authority: string, scheme: "http" | "https", extra: readonly (readonly [string, string])[]): [string, string][] {
  return [
    [":method", "POST"],
    [":scheme", scheme],
    [":path", path],
    [":authority", authority],
    ["content-type", "application/grpc"],
    ["te", "trailers"],
    ...extra.map(([n, v]) => [n, v] as [string, string]),
  ];
}

// ---- frames for a client that misbehaves on its own schedule --------------------------------

/** SETTINGS_INITIAL_WINDOW_SIZE, and the largest window HTTP/2 allows. */
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
const MAX_WINDOW = 2 ** 31 - 1;

/**
 * The client's opening: the preface, SETTINGS with the largest stream
 * window, and the largest connection window; the server may then send all
 * it has without waiting for the client, which decides alone when it reads.
 */
export function opening(): Buffer {
  const setting = Buffer.alloc(6);
  setting.writeUInt16BE(SETTINGS_INITIAL_WINDOW_SIZE, 0);
  setting.writeUInt32BE(MAX_WINDOW, 2);
  const increment = Buffer.alloc(4);
  increment.writeUInt32BE(MAX_WINDOW - 65_535, 0);
  return Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0, setting), frame(FRAME.WINDOW_UPDATE, 0, 0, increment)]);
}

/** A gRPC request's HEADERS frame on `streamId` (odd, increasing), for `path` such as /convene.v1.Coordinator/GetRoute. */
export function grpcHeaders(streamId: number, path: string): Buffer {
  return frame(FRAME.HEADERS, FLAG.END_HEADERS, streamId, headerBlock(grpcRequestFields(path, "member", "http", [])));
}

/** A gRPC message in one DATA frame; `declaredLength` may lie, `end: false` leaves the stream open. */
export function grpcData(streamId: number, protobuf: Buffer, options: { end?: boolean; declaredLength?: number } = {}): Buffer {
  const message = grpcMessage(protobuf);
  if (options.declaredLength !== undefined) message.writeUInt32BE(options.declaredLength, 1);
  return frame(FRAME.DATA, options.end === false ? 0 : FLAG.END_STREAM, streamId, message);
}

/** A whole unary (or server-streaming) gRPC request on `streamId`. */
export function grpcRequest(streamId: number, path: string, protobuf: Buffer): Buffer {
  return Buffer.concat([grpcHeaders(streamId, path), grpcData(streamId, protobuf)]);
}

/** A protobuf message of string fields only, e.g. { 1: "meeting-id" }. */
export function stringFields(fields: Readonly<Record<number, string>>): Buffer {
  return writeFields(Object.entries(fields).map(([field, value]) => ({ field: Number(field), wire: 2 as const, bytes: Buffer.from(value) })));
}

/** Whether the server's bytes so far hold a DATA frame on `streamId` (the stream has answered). */
export function hasDataOn(received: Buffer, streamId: number): boolean {
  let at = 0;
  while (at + 9 <= received.length) {
    const length = received.readUIntBE(at, 3);
    const type = received[at + 3];
    const id = received.readUInt32BE(at + 5) & 0x7fffffff;
    if (type === FRAME.DATA && id === streamId) return true;
    at += 9 + length;
  }
  return false;
}
