/**
 * Hostile HTTP and WebSocket requests for the gateway, as raw bytes, each
 * with what its answer must be. Kinds:
 * - path: every route (/route/{id}, /meetings/{id}/..., /healthz,
 *   /metrics, /, /dashboard.json, unknown ones) with traversal (plain,
 *   encoded, "..;"), encoded slashes and backslashes, NUL and control
 *   characters, absurd ids, and any method, valid or not;
 * - header: CR/LF injected into values, bare CR or LF, NUL, obs-fold,
 *   broken names, huge and numerous headers, lying or conflicting
 *   Content-Length and Transfer-Encoding, missing Host, odd versions;
 * - body: over the size limit (declared or chunked), cut short, broken
 *   chunked encoding;
 * - pipeline: several hostile requests in one write;
 * - ws-handshake: upgrades to every kind of path, and to a real meeting
 *   with a bad key, version, method or Upgrade header;
 * - ws-frames: a real upgrade, then frames no client may send (unmasked,
 *   reserved bits and opcodes, lying lengths, oversize, bad UTF-8, bad
 *   close codes, fragmented control frames) or garbage bytes.
 * No request may create a meeting or say anything in a room: ids are real
 * meetings or invalid ones, and `couldCreate` checks the final bytes again
 * (an id that encoding turned valid would make the gateway create it).
 */
import fc from "fast-check";
import { MEETING_ID, badMeetingId, repeated } from "./hostile-values.js";
import { frame } from "./raw-http.js";

export interface GatewayWorld {
  readonly host: string;
  readonly port: number;
  /** Meetings that exist (each hosted by a demo server, most with a chat history). */
  readonly meetings: readonly string[];
}

/**
 * What the answer must be:
 * - error: a 4xx/5xx (not 500) with a JSON {error, message} body (none for HEAD);
 * - read: a valid request that changes nothing (GET /healthz): any answer but 500;
 * - error-or-close: as error, or the connection closed without an answer
 *   (a request cut short, CONNECT, which the server drops);
 * - ws: 101, then the server closes the connection or answers only with
 *   welcome/error/pong frames.
 */
export type Expectation = "error" | "read" | "error-or-close" | "ws";

export interface HttpCase {
  readonly kind: "path" | "header" | "body" | "pipeline" | "ws-handshake" | "ws-frames";
  readonly bytes: readonly Buffer[];
  readonly expect: Expectation;
  /** The request is HEAD: the answer has no body. */
  readonly head: boolean;
  /** Answers to wait for (pipelines). */
  readonly responses: number;
  readonly halfClose: boolean;
  readonly afterUpgrade?: readonly Buffer[];
  /** What is shown in a failure report. */
  readonly shown: string;
}

const VALID_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "MKCOL", "COPY", "MOVE", "LOCK", "SEARCH", "PURGE", "M-SEARCH"];
const BAD_METHODS = ["get", "GeT", "G\u0000T", "GÉT", "X".repeat(300), "GET\tX", "123", "-", "XYZZY", "PRI"];

/** Path segments that try to leave a meeting, hide a separator, or are not even valid in a URL. */
const HOSTILE_SEGMENTS = [
  "..", ".", "%2e%2e", "%2E%2E", ".%2e", "%2e.", "..;", "..;x", ".;", "%2e%2e;", "a%2fb", "%2F", "%2f..", "%5c", "%5C..", "\\", "..\\", "\\..",
  "%252e%252e", "%c0%ae%c0%ae", "%e0%80%ae", "%00", "x%00y", "..%00", "%0d%0a", "%0d%0aSet-Cookie:x=1", "%", "%zz", "%2", "a b", "\u0000", "\t",
  "é", "\u202e", "\u0085", "\u007f", "?..", "#/../..", ";/..", "%3f..", "~", "*", "..%2f..%2f..%2fetc%2fpasswd", "%u002e%u002e",
];
/** Segments that are harmless on their own (but never alone: a hostile one always comes with them). */
const PLAIN_SEGMENTS = ["x", "chat", "state", "ws", "history", "", "a.b", "%41", "index.html"];

const QUERIES = ["", "", "", "?a=1", "?x=%2e%2e%2f", "?create=true", "?meetingId=other", "?%00", "?a=\u0000", "?" + "q".repeat(3000), "?a=1&a=2", "?..", "?x=%zz"];

/** Top-level routes that exist: a GET of one of these is a valid read. */
const READ_ROUTES = ["/", "/healthz", "/metrics", "/dashboard.json"];
const ROUTE_MUTATIONS = ["/", "/..", "%00", ";x", "/x", "%2f", "..", "//", "/%2e%2e", "%20", "\\", ".json", "~", "/../route/%2e"];
const UNKNOWN_PATHS = [
  "/admin", "/.env", "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/meetings", "/route", "/route/", "/meetings/", "*", "//meetings/x",
  "/MEETINGS/x", "/Route/x", "/favicon.ico", "/index.html", "/dashboard.json/..", "/healthz/../metrics", "/.git/config", "/%", "/\\", "/;",
  "/route/%2e%2e/healthz", "/meetings/%2e%2e/healthz", "/api/v1/nodes", "/metrics/../dashboard.json",
];

const pick = <T>(values: readonly T[]): fc.Arbitrary<T> => fc.constantFrom(...values);

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
/** Percent-encoded, lone surrogates (which have no UTF-8) as U+FFFD first. */
const percentEncoded = (s: string): string => encodeURIComponent(s.replace(LONE_SURROGATE, "\ufffd"));

/** A bad meeting id as it can appear in a path: percent-encoded (so "%" alone makes it invalid) or one of the raw classics. */
function badIdInPath(world: GatewayWorld): fc.Arbitrary<string> {
  const someExisting = world.meetings[0] ?? "x";
  return fc.oneof(
    { weight: 3, arbitrary: badMeetingId().map((id) => percentEncoded(id.length > 20_000 ? id.slice(0, 20_000) : id)) },
    {
      weight: 2,
      arbitrary: pick([".", "..", "%2e", "%2e%2e", ".%2E", "..;", "a%00", "%", "%%", " b", "a\u0000b", "é", "\u202e", `${someExisting}%2F..%2Fadmin`, `${someExisting};x`, `${someExisting}%00`, "x".repeat(129), "x".repeat(20_000)]),
    },
  );
}

function idInPath(world: GatewayWorld): fc.Arbitrary<string> {
  return fc.oneof(pick(world.meetings), badIdInPath(world));
}

interface RequestParts {
  method: string;
  target: string;
  /** Raw header lines, written as given (CR/LF inside included). */
  headers: string[];
  body?: Buffer;
  version?: string;
  /** Host and Connection: close are added unless false. */
  defaults?: boolean;
}

export function requestBytes(world: GatewayWorld, r: RequestParts): Buffer {
  const lines = [`${r.method} ${r.target} ${r.version ?? "HTTP/1.1"}`];
  if (r.defaults !== false) lines.push(`Host: ${world.host}:${world.port}`);
  lines.push(...r.headers);
  if (r.defaults !== false) lines.push("Connection: close");
  const head = Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "utf8");
  return r.body ? Buffer.concat([head, r.body]) : head;
}

/** The text after each "/route/" or "/meetings/" in `target`, as the gateway would take it for the meeting id. */
function idsAfterPrefixes(target: string): string[] {
  const ids: string[] = [];
  for (const prefix of ["/route/", "/meetings/"]) {
    for (let at = target.indexOf(prefix); at !== -1; at = target.indexOf(prefix, at + 1)) {
      const rest = target.slice(at + prefix.length);
      // The id ends where the gateway ends it (at "?", and "/" under /meetings/), or where the request line does.
      const end = rest.search(prefix === "/route/" ? /[?\s]/ : /[/?\s]/);
      ids.push(end === -1 ? rest : rest.slice(0, end));
    }
  }
  return ids;
}

/** Whether the request could make the gateway create a meeting: an id that is valid and not one of the world's. */
export function couldCreate(world: GatewayWorld, target: string): boolean {
  return idsAfterPrefixes(target).some((id) => MEETING_ID.test(id) && id !== "." && id !== ".." && !world.meetings.includes(id));
}

/** What a well-formed request for `method target` must get; the request line itself is fine. */
function expectationFor(world: GatewayWorld, method: string, target: string): Expectation {
  if (method === "CONNECT") return "error-or-close";
  // The router takes the asterisk form ("GET * HTTP/1.1") for "/": a read of the dashboard.
  const path = target === "*" ? "/" : target.split(/[?#]/, 1)[0]!;
  if ((method === "GET" || method === "HEAD") && READ_ROUTES.includes(path)) return "read";
  if ((method === "GET" || method === "HEAD") && path.startsWith("/route/") && world.meetings.includes(path.slice("/route/".length))) return "read";
  // A hostile segment that starts a query ("?..") leaves a real page of a real meeting: /meetings/{id}/, /state, /ws (426).
  const meetingPath = /^\/meetings\/([^/?]+)(\/[^?]*)?(\?.*)?$/s.exec(target);
  if (meetingPath && world.meetings.includes(meetingPath[1]!) && ["", "/", "/state", "/ws", undefined].includes(meetingPath[2])) return "read";
  return "error";
}

function pathCase(world: GatewayWorld): fc.Arbitrary<RequestParts> {
  const anyMethod = fc.oneof({ weight: 6, arbitrary: pick(["GET", "HEAD"]) }, { weight: 4, arbitrary: pick(VALID_METHODS) }, { weight: 1, arbitrary: pick([...BAD_METHODS, "CONNECT"]) });
  const target = fc.oneof(
    { weight: 3, arbitrary: fc.tuple(idInPath(world), pick(QUERIES)).map(([id, q]) => `/route/${id}${q}`) },
    {
      weight: 5,
      arbitrary: fc
        .tuple(idInPath(world), fc.array(pick(PLAIN_SEGMENTS), { maxLength: 2 }), fc.array(pick(HOSTILE_SEGMENTS), { minLength: 1, maxLength: 3 }), fc.nat(), pick(QUERIES))
        .map(([id, plain, hostile, at, q]) => {
          const segments = [...plain];
          for (const h of hostile) segments.splice(at % (segments.length + 1), 0, h);
          return `/meetings/${id}/${segments.join("/")}${q}`;
        }),
    },
    { weight: 1, arbitrary: fc.tuple(badIdInPath(world), pick(QUERIES)).map(([id, q]) => `/meetings/${id}${q}`) },
    { weight: 2, arbitrary: fc.tuple(pick(READ_ROUTES), pick(ROUTE_MUTATIONS), pick(QUERIES)).map(([r, m, q]) => `${r === "/" ? "" : r}${m}${q}`) },
    { weight: 1, arbitrary: fc.tuple(pick(READ_ROUTES), pick(QUERIES)).map(([r, q]) => `${r}${q}`) },
    { weight: 2, arbitrary: fc.oneof(pick(UNKNOWN_PATHS), fc.string({ minLength: 1, maxLength: 60 }).map((s) => `/${percentEncoded(s)}`), repeated(20_000, 80_000).map((s) => `/${percentEncoded(s)}`)) },
    { weight: 1, arbitrary: pick(["http://127.0.0.1/route/x%00", "http://evil.example/meetings/..", "https://x/healthz/..", "//route/%00", "route/%00", "?x"]) },
  );
  return fc.record({ method: anyMethod, target, headers: fc.constant([]) });
}

/** Header lines no well-behaved client sends; most make the request malformed, the rest ride on a refused path. */
function hostileHeaders(): fc.Arbitrary<{ lines: string[]; defaults: boolean; version?: string }> {
  const line = fc.oneof(
    { weight: 8, arbitrary: pick([
      "X-A: a\r\nX-Injected: 1", "X-A: a\rb", "X-A: a\nb", "X-A: a\u0000b", " X-A: folded", "X-A: a\r\n continued", "X A: b", "X-A : b", ": novalue", "X-A",
      "X-É: b", "X-A: é\u0085", "Host: evil.example", "Host: 127.0.0.1:1", "Content-Length: abc", "Content-Length: 5\r\nContent-Length: 6", "Content-Length: -1",
      "Content-Length: 99999999999999999999", "Content-Length: 0x10", "Content-Length: 1 2", "Transfer-Encoding: chunked\r\nContent-Length: 5", "Transfer-Encoding: gzip",
      "Transfer-Encoding: chunked, chunked", "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity", "Transfer-Encoding: \u000bchunked", "Expect: 100-continue",
      "Expect: garbage", "Connection: upgrade\r\nUpgrade: h2c", "Connection: keep-alive, close, upgrade", "Upgrade: websocket", "X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: <script>",
      "X-Forwarded-Host: evil.example", "X-Forwarded-Proto: javascript", "Forwarded: for=\"[::1]\";host=evil", "Cookie: a=b; \u0001=2", "Authorization: Bearer \u0000",
      "Range: bytes=0-0,0-0,0-0,0-0", "Content-Type: multipart/form-data; boundary=", "Content-Encoding: gzip", "Accept-Encoding: \u0000", "If-None-Match: *",
    ]) },
    // Oversize header blocks all end the same way (431): fewer of them.
    { weight: 1, arbitrary: repeated(17_000, 40_000).map((v) => `X-Big: ${v.replace(/[\u0000-\u001f\u007f]/g, "x")}`) },
    { weight: 1, arbitrary: fc.integer({ min: 100, max: 400 }).map((n) => Array.from({ length: n }, (_, i) => `X-N${i}: ${"v".repeat(60)}`).join("\r\n")) },
    { weight: 3, arbitrary: fc.string({ maxLength: 40 }).map((s) => `X-Random: ${s}`) },
  );
  return fc.record(
    {
      lines: fc.array(line, { minLength: 1, maxLength: 3 }),
      defaults: fc.oneof({ weight: 5, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
      version: fc.oneof({ weight: 6, arbitrary: fc.constant("HTTP/1.1") }, { weight: 1, arbitrary: pick(["HTTP/1.0", "HTTP/2.0", "HTTP/1.1x", "HTTP/0.9", "HTTP/1.10", "http/1.1", "HTTP/1.1 extra", ""]) }),
    },
    { requiredKeys: ["lines", "defaults"] },
  );
}

/** Targets every request of these kinds goes to: each refused by the gateway or by the meeting server behind it. */
function refusedTarget(world: GatewayWorld): fc.Arbitrary<{ method: string; target: string }> {
  return fc.oneof(
    fc.tuple(pick(["GET", "POST"]), badIdInPath(world)).map(([method, id]) => ({ method, target: `/route/${id}` })),
    fc.tuple(pick(["GET", "POST", "PUT"]), badIdInPath(world)).map(([method, id]) => ({ method, target: `/meetings/${id}/x` })),
    fc.tuple(pick(["GET", "DELETE"]), pick(world.meetings)).map(([method, id]) => ({ method, target: `/meetings/${id}/..%2f..%2fadmin` })),
    // Through to the meeting server, which allows only GET and has no such page.
    fc.tuple(pick(["POST", "PUT", "PATCH"]), pick(world.meetings)).map(([method, id]) => ({ method, target: `/meetings/${id}/%252e%252e` })),
    fc.tuple(pick(["GET", "POST"]), pick(["/nope", "/healthz/x", "/route"])).map(([method, target]) => ({ method, target })),
  );
}

function headerCase(world: GatewayWorld): fc.Arbitrary<RequestParts> {
  return fc.tuple(refusedTarget(world), hostileHeaders()).map(([t, h]) => ({ ...t, headers: h.lines, defaults: h.defaults, ...(h.version !== undefined ? { version: h.version } : {}) }));
}

function bodyCase(world: GatewayWorld): fc.Arbitrary<RequestParts & { halfClose: boolean; cut: boolean }> {
  const target = refusedTarget(world).map((t) => ({ ...t, method: t.method === "GET" ? "POST" : t.method }));
  const overLimit = fc.integer({ min: 1024 * 1024 + 1, max: 1024 * 1024 + 300_000 });
  const body = fc.oneof(
    overLimit.map((n) => ({ headers: [`Content-Length: ${n}`], body: Buffer.alloc(n, 0x7a), halfClose: false, cut: false })),
    overLimit.map((n) => {
      const chunks: Buffer[] = [];
      for (let left = n; left > 0; left -= 65_536) {
        const size = Math.min(65_536, left);
        chunks.push(Buffer.from(`${size.toString(16)}\r\n`), Buffer.alloc(size, 0x79), Buffer.from("\r\n"));
      }
      chunks.push(Buffer.from("0\r\n\r\n"));
      return { headers: ["Transfer-Encoding: chunked"], body: Buffer.concat(chunks), halfClose: false, cut: false };
    }),
    fc.integer({ min: 10, max: 100_000 }).map((n) => ({ headers: [`Content-Length: ${n + 50}`], body: Buffer.alloc(n, 0x61), halfClose: true, cut: true })),
    pick(["zz\r\nabc\r\n0\r\n\r\n", "5\r\nabc\r\n0\r\n\r\n", "3\r\nabcdef\r\n0\r\n\r\n", "-1\r\nx\r\n", "3;" + "e".repeat(20_000) + "\r\nabc\r\n0\r\n\r\n", "fffffffffffffffff\r\nx\r\n", "0\r\nX-Trailer: \u0000\r\n\r\n"]).map(
      (chunked) => ({ headers: ["Transfer-Encoding: chunked"], body: Buffer.from(chunked, "utf8"), halfClose: true, cut: false }),
    ),
    fc.uint8Array({ minLength: 1, maxLength: 5_000 }).map((b) => ({ headers: [`Content-Length: ${b.length}`, "Content-Type: application/json"], body: Buffer.from(b), halfClose: false, cut: false })),
  );
  return fc.tuple(target, body).map(([t, b]) => ({ ...t, ...b }));
}

const WS_KEY = "dGhlIHNhbXBsZSBub25jZQ==";

function wsHandshake(world: GatewayWorld): fc.Arbitrary<{ parts: RequestParts; expect: Expectation }> {
  const realWs = pick(world.meetings).map((id) => `/meetings/${id}/ws`);
  const badTarget = fc.oneof(
    pick(["/route/%2e%2e", "/healthz", "/", "/nope", "/dashboard.json", "/metrics", "*", "/meetings/", "/meetings"]),
    badIdInPath(world).map((id) => `/meetings/${id}/ws`),
    fc.tuple(pick(world.meetings), pick(HOSTILE_SEGMENTS)).map(([id, h]) => `/meetings/${id}/${h}/ws`),
    pick(world.meetings).map((id) => `/meetings/${id}/notws`),
    pick(world.meetings).map((id) => `/meetings/${id}`),
  );
  const key = fc.oneof(fc.constant(WS_KEY), pick(["", "short", "!!!!notbase64!!!!!!!!!==", "A".repeat(1000), `${WS_KEY}\r\nX-Injected: 1`, "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZQ==="]), fc.constant(undefined));
  const version = fc.oneof(fc.constant("13"), pick(["12", "13, 8", "abc", "", "0", "99999999999", "8"]), fc.constant(undefined));
  const upgrade = fc.oneof({ weight: 4, arbitrary: fc.constant("websocket") }, { weight: 1, arbitrary: pick(["websocketx", "h2c", "WebSocket", "", "websocket, h2c"]) });
  return fc
    .record({ target: fc.oneof(realWs, badTarget), method: fc.oneof({ weight: 5, arbitrary: fc.constant("GET") }, { weight: 1, arbitrary: pick(["POST", "PUT", "HEAD"]) }), key, version, upgrade })
    .map((h) => {
      const headers = [`Upgrade: ${h.upgrade}`, "Connection: Upgrade"];
      if (h.key !== undefined) headers.push(`Sec-WebSocket-Key: ${h.key}`);
      if (h.version !== undefined) headers.push(`Sec-WebSocket-Version: ${h.version}`);
      // A key with a header line injected after it is still the key: the injected line is just another header.
      const key = h.key?.split("\r\n", 1)[0];
      const valid =
        world.meetings.some((id) => h.target === `/meetings/${id}/ws`) && h.method === "GET" && key === WS_KEY && (h.version === "13" || h.version === "8") && h.upgrade.toLowerCase() === "websocket";
      // With an empty Upgrade header it is no upgrade at all, just a request like any other.
      const expect: Expectation = valid ? "ws" : h.upgrade === "" ? expectationFor(world, h.method, h.target) : "error";
      return { parts: { method: h.method, target: h.target, headers: [`Host: ${world.host}:${world.port}`, ...headers], defaults: false }, expect };
    });
}

/** Text that is no chat message: whatever it is, it is not a join or a say (nothing may be said in a room). */
const notChat = fc.string({ maxLength: 200 }).filter((s) => {
  try {
    const v = JSON.parse(s) as { type?: unknown };
    return !(v && typeof v === "object" && (v.type === "join" || v.type === "say"));
  } catch {
    return true;
  }
});

/** What is sent after a real upgrade: frames a client may not send, or garbage. */
function wsGarbage(): fc.Arbitrary<Buffer[]> {
  const one = fc.oneof(
    fc.uint8Array({ minLength: 1, maxLength: 2_000 }).map((b) => Buffer.from(b)),
    fc.constant(frame({ opcode: 1, payload: Buffer.from("hi"), masked: false })),
    fc.integer({ min: 1, max: 7 }).map((rsv) => frame({ opcode: 1, rsv, payload: Buffer.from("{}") })),
    pick([3, 4, 5, 6, 7, 11, 12, 13, 14, 15]).map((opcode) => frame({ opcode, payload: Buffer.from("x") })),
    fc.constant(frame({ opcode: 0, payload: Buffer.from("continuation without a start") })),
    fc.constant(frame({ opcode: 9, fin: false, payload: Buffer.from("fragmented ping") })),
    fc.constant(frame({ opcode: 9, payload: Buffer.alloc(200, 0x70) })),
    pick([2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n, 1n << 40n, 20_000n]).map((declaredLength) => frame({ opcode: 2, payload: Buffer.from("short"), declaredLength })),
    fc.integer({ min: 16 * 1024 + 1, max: 40_000 }).map((n) => frame({ opcode: 1, payload: Buffer.alloc(n, 0x78) })),
    pick([Buffer.from([0xff, 0xfe]), Buffer.from([0xc0, 0x80]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xf4, 0x90, 0x80, 0x80])]).map((payload) => frame({ opcode: 1, payload })),
    pick([999, 1004, 1005, 1006, 1015, 2999, 5000, 65535]).map((code) => {
      const p = Buffer.alloc(2);
      p.writeUInt16BE(code);
      return frame({ opcode: 8, payload: p });
    }),
    fc.constant(frame({ opcode: 8, payload: Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from([0xff, 0xfe])]) })),
    fc.constant(frame({ opcode: 8, payload: Buffer.from([0x03]) })),
    fc.uint8Array({ maxLength: 300 }).map((b) => frame({ opcode: 2, payload: Buffer.from(b) })),
    notChat.map((s) => frame({ opcode: 1, payload: Buffer.from(s, "utf8") })),
    fc.integer({ min: 40, max: 80 }).map((n) => Buffer.concat(Array.from({ length: n }, () => frame({ opcode: 1, payload: Buffer.from("{\"type\":\"nope\"}") })))),
  );
  return fc.array(one, { minLength: 1, maxLength: 3 });
}

/** `count` cases of each kind, drawn with `draw` (seeded). */
export function gatewayArbitraries(world: GatewayWorld): Record<HttpCase["kind"], fc.Arbitrary<HttpCase>> {
  const shown = (b: Buffer): string => {
    const text = b.subarray(0, 300).toString("latin1");
    return JSON.stringify(b.length > 300 ? `${text}…(${b.length} bytes)` : text);
  };
  return {
    path: pathCase(world).map((r) => {
      const bytes = requestBytes(world, r);
      return { kind: "path", bytes: [bytes], expect: expectationFor(world, r.method, r.target), head: r.method === "HEAD", responses: 1, halfClose: false, shown: shown(bytes) };
    }),
    header: headerCase(world).map((r) => {
      const bytes = requestBytes(world, r);
      // The headers may be valid after all (an injected header line is just another header): the target is refused anyway.
      return { kind: "header", bytes: [bytes], expect: "error-or-close", head: false, responses: 1, halfClose: false, shown: shown(bytes) };
    }),
    body: bodyCase(world).map((r) => {
      const bytes = requestBytes(world, r);
      return { kind: "body", bytes: [bytes], expect: r.cut ? "error-or-close" : "error", head: false, responses: 1, halfClose: r.halfClose, shown: shown(bytes) };
    }),
    pipeline: fc.array(fc.oneof(pathCase(world).filter((r) => expectationFor(world, r.method, r.target) === "error" && r.method !== "HEAD"), headerCase(world)), { minLength: 2, maxLength: 3 }).map((rs) => {
      const bytes = Buffer.concat(rs.map((r, i) => requestBytes(world, { ...r, defaults: false, headers: [`Host: ${world.host}:${world.port}`, ...r.headers, ...(i === rs.length - 1 ? ["Connection: close"] : [])] })));
      return { kind: "pipeline", bytes: [bytes], expect: "error-or-close", head: false, responses: rs.length, halfClose: false, shown: shown(bytes) };
    }),
    "ws-handshake": wsHandshake(world).map(({ parts, expect }) => {
      const bytes = requestBytes(world, parts);
      return { kind: "ws-handshake", bytes: [bytes], expect, head: parts.method === "HEAD", responses: 1, halfClose: false, afterUpgrade: [], shown: shown(bytes) };
    }),
    "ws-frames": fc.tuple(pick(world.meetings), wsGarbage()).map(([id, frames]) => {
      const bytes = requestBytes(world, {
        method: "GET",
        target: `/meetings/${id}/ws`,
        headers: [`Host: ${world.host}:${world.port}`, "Upgrade: websocket", "Connection: Upgrade", `Sec-WebSocket-Key: ${WS_KEY}`, "Sec-WebSocket-Version: 13"],
        defaults: false,
      });
      return { kind: "ws-frames", bytes: [bytes], expect: "ws", head: false, responses: 1, halfClose: false, afterUpgrade: frames, shown: `${shown(bytes)} then ${frames.map(shown).join(" ")}` };
    }),
  };
}
