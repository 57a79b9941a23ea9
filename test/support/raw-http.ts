/**
 * HTTP/1.1 and WebSocket over raw TCP sockets, for the gateway fuzz test:
 * the bytes sent are exactly the bytes given (request lines with control
 * characters, CR/LF inside header values, bodies that lie about their
 * length, frames no WebSocket client would send), which fetch, undici and
 * node:http refuse to produce. Every exchange is bounded by a timeout;
 * whatever the server answered (or its closing the connection) is parsed
 * and returned, never thrown.
 */
import { connect } from "node:net";

export interface RawResponse {
  readonly status: number;
  /** Header names lower-cased; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

export interface RawExchange {
  /** Complete responses, in order (1xx interim answers left out). */
  readonly responses: RawResponse[];
  /** The server closed (or reset) the connection. */
  readonly closed: boolean;
  readonly timedOut: boolean;
  /** A socket error, e.g. ECONNRESET after the server stopped reading an oversize body. */
  readonly error: string | undefined;
  /** Bytes after the last complete response (a WebSocket's frames, or a response cut short). */
  readonly rest: Buffer;
}

interface Parsed {
  readonly response: RawResponse;
  readonly length: number;
}

/** Parses one response at the start of `buf`; undefined when it is not complete yet. `head`: the request was HEAD (no body). */
export function parseResponse(buf: Buffer, head: boolean, atEof: boolean): Parsed | undefined | "garbage" {
  const end = buf.indexOf("\r\n\r\n");
  if (end === -1) return buf.length > 64 * 1024 ? "garbage" : undefined;
  const lines = buf.subarray(0, end).toString("latin1").split("\r\n");
  const statusLine = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? "");
  if (!statusLine) return "garbage";
  const status = Number(statusLine[1]);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) return "garbage";
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const start = end + 4;
  if (head || status < 200 || status === 204 || status === 304 || status === 101) {
    return { response: { status, headers, body: Buffer.alloc(0) }, length: start };
  }
  if (/chunked/i.test(headers["transfer-encoding"] ?? "")) {
    const chunks: Buffer[] = [];
    let at = start;
    for (;;) {
      const lineEnd = buf.indexOf("\r\n", at);
      if (lineEnd === -1) return undefined;
      const size = parseInt(buf.subarray(at, lineEnd).toString("latin1"), 16);
      if (!Number.isFinite(size)) return "garbage";
      if (size === 0) {
        // The last chunk, then trailers (usually none) up to an empty line.
        const trailerEnd = buf.indexOf("\r\n\r\n", lineEnd);
        if (trailerEnd === -1) return undefined;
        return { response: { status, headers, body: Buffer.concat(chunks) }, length: trailerEnd + 4 };
      }
      if (buf.length < lineEnd + 2 + size + 2) return undefined;
      chunks.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 2 + size + 2;
    }
  }
  if (headers["content-length"] !== undefined) {
    const n = Number(headers["content-length"]);
    if (!Number.isSafeInteger(n) || n < 0) return "garbage";
    if (buf.length < start + n) return undefined;
    return { response: { status, headers, body: buf.subarray(start, start + n) }, length: start + n };
  }
  // Neither: the body runs to the end of the connection.
  if (!atEof) return undefined;
  return { response: { status, headers, body: buf.subarray(start) }, length: buf.length };
}

export interface ExchangeOptions {
  readonly timeoutMs: number;
  /** Stop once this many complete (non-1xx) responses arrived; default 1. */
  readonly responses?: number;
  /** The requests are HEAD: responses carry no body. */
  readonly head?: boolean;
  /** End our side after writing (a request cut short must not wait for the rest). */
  readonly halfClose?: boolean;
  /** After a 101, keep reading this long for frames (WebSocket), then stop. */
  readonly afterUpgradeMs?: number;
  /** Written after a 101 arrives (WebSocket frames). */
  readonly afterUpgrade?: readonly Buffer[];
}

/** Writes `payload` to host:port and collects what comes back; see ExchangeOptions for when it stops. */
export function exchange(host: string, port: number, payload: Buffer | readonly Buffer[], options: ExchangeOptions): Promise<RawExchange> {
  const want = options.responses ?? 1;
  return new Promise<RawExchange>((resolve) => {
    const socket = connect({ host, port });
    let buf = Buffer.alloc(0);
    const responses: RawResponse[] = [];
    let closed = false;
    let error: string | undefined;
    let settled = false;
    let upgraded = false;
    let upgradeTimer: NodeJS.Timeout | undefined;
    const finish = (timedOut: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(upgradeTimer);
      socket.destroy();
      resolve({ responses, closed, timedOut, error, rest: buf });
    };
    const timer = setTimeout(() => finish(true), options.timeoutMs);
    const drain = (atEof: boolean): void => {
      while (!upgraded && buf.length > 0) {
        const parsed = parseResponse(buf, options.head ?? false, atEof);
        if (parsed === undefined) return;
        if (parsed === "garbage") {
          responses.push({ status: 0, headers: {}, body: buf });
          buf = Buffer.alloc(0);
          finish(false);
          return;
        }
        buf = buf.subarray(parsed.length);
        if (parsed.response.status < 200 && parsed.response.status !== 101) continue;
        responses.push(parsed.response);
        if (parsed.response.status === 101) {
          upgraded = true;
          for (const frame of options.afterUpgrade ?? []) if (!socket.destroyed) socket.write(frame);
          upgradeTimer = setTimeout(() => finish(false), options.afterUpgradeMs ?? 0);
          return;
        }
        if (responses.length >= want) {
          finish(false);
          return;
        }
      }
    };
    socket.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      drain(false);
    });
    socket.on("error", (err: NodeJS.ErrnoException) => (error = err.code ?? err.message));
    socket.on("close", () => {
      closed = true;
      drain(true);
      finish(false);
    });
    socket.on("connect", () => {
      for (const p of Array.isArray(payload) ? payload : [payload]) {
        if (socket.destroyed) break;
        socket.write(p);
      }
      if (options.halfClose) socket.end();
    });
  });
}

// ---- WebSocket frames -----------------------------------------------------------------------

export interface FrameSpec {
  readonly fin?: boolean;
  /** RSV1..3 as bits 0b100, 0b010, 0b001. */
  readonly rsv?: number;
  readonly opcode: number;
  readonly payload: Buffer;
  /** Clients must mask; a server must refuse an unmasked frame. */
  readonly masked?: boolean;
  /** Announce this length instead of the payload's (a frame that lies about its size). */
  readonly declaredLength?: bigint;
}

/** One WebSocket frame (RFC 6455 §5.2) as written, lies included. */
export function frame(spec: FrameSpec): Buffer {
  const masked = spec.masked ?? true;
  const length = spec.declaredLength ?? BigInt(spec.payload.length);
  const head: number[] = [((spec.fin ?? true) ? 0x80 : 0) | ((spec.rsv ?? 0) << 4) | (spec.opcode & 0x0f)];
  const maskBit = masked ? 0x80 : 0;
  if (length < 126n) head.push(maskBit | Number(length));
  else if (length < 65536n) head.push(maskBit | 126, Number(length >> 8n) & 0xff, Number(length) & 0xff);
  else {
    head.push(maskBit | 127);
    for (let i = 7; i >= 0; i--) head.push(Number((length >> BigInt(8 * i)) & 0xffn));
  }
  if (!masked) return Buffer.concat([Buffer.from(head), spec.payload]);
  const key = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
  const body = Buffer.from(spec.payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= key[i % 4]!;
  return Buffer.concat([Buffer.from(head), key, body]);
}

export interface ServerFrame {
  readonly opcode: number;
  readonly payload: Buffer;
}

/** The frames a server sent (unmasked, as servers send), as far as they are complete. */
export function parseServerFrames(buf: Buffer): ServerFrame[] {
  const frames: ServerFrame[] = [];
  let at = 0;
  while (at + 2 <= buf.length) {
    const opcode = buf[at]! & 0x0f;
    let length = buf[at + 1]! & 0x7f;
    let offset = at + 2;
    if (length === 126) {
      if (offset + 2 > buf.length) break;
      length = buf.readUInt16BE(offset);
      offset += 2;
    } else if (length === 127) {
      if (offset + 8 > buf.length) break;
      length = Number(buf.readBigUInt64BE(offset));
      offset += 8;
    }
    if (offset + length > buf.length) break;
    frames.push({ opcode, payload: buf.subarray(offset, offset + length) });
    at = offset + length;
  }
  return frames;
}
