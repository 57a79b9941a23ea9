/**
 * The demo meeting server: its pure parts (config, room bounds, checkpoint
 * codec, protocol and path checks, the page's escaping), then the server
 * against the in-process fake coordinator (fast: assignments, moves and
 * checkpoints are scripted), then one failover through three real
 * coordinator members: the owner dies, the other demo server restores the
 * room from the last checkpoint.
 */
import http from "node:http";
import * as grpc from "@grpc/grpc-js";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { pack } from "msgpackr";
import WebSocket from "ws";
import {
  type ChatMessage,
  ChatRoom,
  type DemoServer,
  DemoServerConfigError,
  MAX_HISTORY_BYTES,
  MAX_HISTORY_MESSAGES,
  MAX_ROOM_STATE_BYTES,
  RoomStateError,
  decodeRoomState,
  encodeRoomState,
  parseClientMessage,
  startDemoServer,
  validateDemoServerConfig,
} from "../src/demo-server/index.js";
import { escapeHtml, renderMeetingPage, scriptJson } from "../src/demo-server/meeting-page.js";
import { parseMeetingPath } from "../src/demo-server/meeting-path.js";
import { PAGE_SCRIPT } from "../src/demo-server/page-script.js";
import { loadProto, lookup } from "../src/wire/proto.js";
import { FakeCoordinator } from "./support/fake-coordinator.js";
import { MemberCluster, unary } from "./support/member-cluster.js";

const silent = pino({ level: "silent" });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A test's WebSocket client: collects server messages, waits for one by type. */
class WsClient {
  private readonly inbox: any[] = [];
  private readonly wakers = new Set<() => void>();
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data) => {
      this.inbox.push(JSON.parse(String(data)));
      for (const w of [...this.wakers]) w();
    });
    ws.on("error", () => undefined);
    this.closed = new Promise((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static open(url: string): Promise<WsClient> {
    const ws = new WebSocket(url);
    const client = new WsClient(ws);
    return new Promise((resolve, reject) => {
      ws.once("open", () => resolve(client));
      ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade of ${url} answered ${res.statusCode}`)));
      ws.once("error", reject);
    });
  }

  send(message: unknown): void {
    this.ws.send(JSON.stringify(message));
  }

  /** Removes and returns the first message of `type` (matching `pred`), waiting up to `timeoutMs`. */
  async next(type: string, pred: (m: any) => boolean = () => true, timeoutMs = 5000): Promise<any> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const i = this.inbox.findIndex((m) => m.type === type && pred(m));
      if (i >= 0) return this.inbox.splice(i, 1)[0];
      const left = until - Date.now();
      if (left <= 0) throw new Error(`no ${type} message within ${timeoutMs} ms; got ${JSON.stringify(this.inbox).slice(0, 500)}`);
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.wakers.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.wakers.add(wake);
      });
    }
  }
}

/** The status and JSON body of an upgrade the server refuses. */
function upgradeRefusal(url: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once("open", () => reject(new Error(`upgrade of ${url} was accepted`)));
    ws.once("error", () => undefined);
    ws.once("unexpected-response", (_req, res) => {
      let text = "";
      res.on("data", (chunk: Buffer) => (text += chunk.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
  });
}

describe("validateDemoServerConfig", () => {
  it("fills in the defaults and accepts flag-shaped values", () => {
    expect(validateDemoServerConfig({ nodeId: "m1" })).toEqual({
      nodeId: "m1",
      listen: "127.0.0.1:9001",
      advertise: undefined,
      coordinators: ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"],
      capacity: 100,
      region: "",
      checkpointIntervalMs: 1000,
      assignmentWaitMs: 2000,
      logLevel: "info",
    });
    const c = validateDemoServerConfig({
      nodeId: "m2", listen: "0.0.0.0:0", advertise: "10.0.0.2:9002", coordinators: "127.0.0.1:1, 127.0.0.1:2",
      capacity: "7", checkpointIntervalMs: "250", region: "eu", logLevel: "warn", assignmentWaitMs: undefined,
    });
    expect(c).toMatchObject({ coordinators: ["127.0.0.1:1", "127.0.0.1:2"], capacity: 7, checkpointIntervalMs: 250, region: "eu", advertise: "10.0.0.2:9002" });
  });

  it.each([
    [{}, /^nodeId is required: the id this server registers with the coordinator$/],
    [{ nodeId: "a b" }, /^nodeId must be a node id: 1 to 64 letters, digits, ".", "_" or "-"; got "a b" \(a space is not allowed\)$/],
    [{ nodeId: "m1", listen: "nope" }, /^listen must be host:port with a port from 0 \(any free port\) to 65535; got "nope"$/],
    [{ nodeId: "m1", listen: "127.0.0.1:70000" }, /^listen must be/],
    [{ nodeId: "m1", advertise: "127.0.0.1:0" }, /^advertise must be host:port with a port from 1 to 65535/],
    [{ nodeId: "m1", listen: "0.0.0.0:9001" }, /^advertise is required when listen binds every interface/],
    [{ nodeId: "m1", coordinators: [] }, /^coordinators must list the coordinator members as host:port/],
    [{ nodeId: "m1", coordinators: "a:1,a:1" }, /^coordinators lists "a:1" twice$/],
    [{ nodeId: "m1", coordinators: ["x"] }, /^coordinators must be host:port/],
    [{ nodeId: "m1", capacity: 0 }, /^capacity must be a whole number from 1 to 4,294,967,295; got 0$/],
    [{ nodeId: "m1", capacity: "ten" }, /^capacity must be a whole number .*; got "ten"$/],
    [{ nodeId: "m1", checkpointIntervalMs: 5 }, /^checkpointIntervalMs must be a whole number from 10/],
    [{ nodeId: "m1", region: "x".repeat(65) }, /^region must be text of at most 64/],
    [{ nodeId: "m1", logLevel: "loud" }, /^logLevel must be one of/],
    [{ nodeId: "m1", port: 1 }, /^"port" is not a demo server config key/],
  ])("refuses %j", (raw, message) => {
    expect(() => validateDemoServerConfig(raw)).toThrow(DemoServerConfigError);
    expect(() => validateDemoServerConfig(raw)).toThrow(message);
  });
});

describe("ChatRoom and its checkpoint", () => {
  it("keeps the newest 500 messages", () => {
    const room = new ChatRoom("r", 1);
    for (let i = 0; i < MAX_HISTORY_MESSAGES + 100; i++) room.say("ann", `m${i}`, i);
    const h = room.history();
    expect(h).toHaveLength(MAX_HISTORY_MESSAGES);
    expect(h[0]!.text).toBe("m100");
    expect(h.at(-1)!.text).toBe(`m${MAX_HISTORY_MESSAGES + 99}`);
    expect(room.version).toBe(MAX_HISTORY_MESSAGES + 100);
  });

  it("bounds the history by bytes so that the checkpoint stays under 256 KiB", () => {
    const room = new ChatRoom("r", 1);
    const long = "€".repeat(2000); // 6,000 bytes of UTF-8
    for (let i = 0; i < 400; i++) room.say("x".repeat(40), `${i}${long}`.slice(0, 2000), Date.now());
    expect(room.historyBytes).toBeLessThanOrEqual(MAX_HISTORY_BYTES);
    const bytes = encodeRoomState(room.history());
    expect(bytes.length).toBeLessThan(MAX_ROOM_STATE_BYTES);
    expect(decodeRoomState(bytes).at(-1)!.text.startsWith("399")).toBe(true);
  });

  it("round-trips a history through the checkpoint, and re-bounds a restored one", () => {
    const history: ChatMessage[] = [
      { from: "ann", text: "hi <b>&</b>\nsecond line", at: 1_700_000_000_123 },
      { from: "bo 🎉", text: "ünïcödé", at: 1_700_000_000_456 },
    ];
    expect(decodeRoomState(encodeRoomState(history))).toEqual(history);
    const many = Array.from({ length: 700 }, (_, i) => ({ from: "a", text: String(i), at: i }));
    const restored = new ChatRoom("r", 2, decodeRoomState(encodeRoomState(many)));
    expect(restored.history()).toHaveLength(MAX_HISTORY_MESSAGES);
    expect(restored.version).toBe(0);
  });

  it("names what is wrong in a foreign checkpoint", () => {
    expect(decodeRoomState(encodeRoomState([]))).toEqual([]);
    expect(() => decodeRoomState(Uint8Array.from([0x92, 0xa3]))).toThrow(/not msgpack/);
    expect(() => decodeRoomState(pack({ v: 2, history: [] }))).toThrow(/v must be 1/);
    expect(() => decodeRoomState(pack({ v: 1, history: [["a", "b"]] }))).toThrow(/history\[0\] must be \[from, text, at\]/);
    expect(() => decodeRoomState(pack({ v: 1, history: [["a", 5, 1]] }))).toThrow(/history\[0\]\.text/);
    expect(() => decodeRoomState(pack("just a string"))).toThrow(RoomStateError);
  });
});

describe("client input checks", () => {
  it.each([
    ['{"type":"join","name":"  ann  "}', { type: "join", name: "ann" }],
    ['{"type":"say","text":"hello\\nworld"}', { type: "say", text: "hello\nworld" }],
    ['{"type":"ping"}', { type: "ping" }],
    ["not json", { error: "bad_message", message: "messages must be JSON" }],
    ["[1,2]", { error: "bad_message", message: "a message must be a JSON object" }],
    ["null", { error: "bad_message", message: "a message must be a JSON object" }],
    ['{"type":"shout"}', { error: "bad_message", message: expect.stringContaining('type must be "join", "say" or "ping"') }],
    [`{"type":"join","name":"${"n".repeat(41)}"}`, { error: "bad_message", message: "join.name must be 1..40 characters after trimming, got 41" }],
    ['{"type":"join","name":"   "}', { error: "bad_message", message: expect.stringContaining("join.name must be 1..40") }],
    ['{"type":"join","name":7}', { error: "bad_message", message: "join.name must be a string" }],
    ['{"type":"join","name":"a\\u0007b"}', { error: "bad_message", message: "join.name must not contain control characters" }],
    [`{"type":"say","text":"${"t".repeat(2001)}"}`, { error: "bad_message", message: "say.text must be at most 2000 characters, got 2001" }],
    ['{"type":"say","text":"  "}', { error: "bad_message", message: "say.text must not be empty" }],
    ['{"type":"say"}', { error: "bad_message", message: "say.text must be a string" }],
  ])("frame %#", (frame, expected) => {
    expect(parseClientMessage(frame, false)).toEqual(expected);
  });

  it("refuses binary frames", () => {
    expect(parseClientMessage("", true)).toMatchObject({ error: "bad_message", message: expect.stringContaining("binary") });
  });

  it.each([
    ["/meetings/room-1", { kind: "bare", meetingId: "room-1", query: "" }],
    ["/meetings/room-1?name=x", { kind: "bare", meetingId: "room-1", query: "?name=x" }],
    ["/meetings/team:a.b_c-d/", { kind: "page", meetingId: "team:a.b_c-d", query: "" }],
    ["/meetings/r/ws", { kind: "ws", meetingId: "r", query: "" }],
    ["/meetings/r/state", { kind: "state", meetingId: "r", query: "" }],
    ["/meetings/r/other/x", { kind: "other", meetingId: "r", query: "" }],
    ["/meetings/a%3Ab/", { kind: "page", meetingId: "a:b", query: "" }],
    ["/meetings/a b/", { kind: "bad-id" }],
    ["/meetings/%E0%A4%A/", { kind: "bad-id", message: "meeting id is not valid percent-encoding" }],
    ["/meetings/", { kind: "bad-id" }],
    [`/meetings/${"x".repeat(129)}/`, { kind: "bad-id" }],
    ["/healthz", undefined],
  ])("path %#", (url, expected) => {
    const got = parseMeetingPath(url);
    if (expected === undefined) expect(got).toBeUndefined();
    else expect(got).toMatchObject(expected);
  });
});

describe("the page", () => {
  it("escapes text and boot data, and its script parses", () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe("&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    expect(scriptJson({ t: "</script><!--\u2028" })).toBe('{"t":"\\u003c/script\\u003e\\u003c!--\\u2028"}');
    expect(() => new Function(PAGE_SCRIPT)).not.toThrow();
    const page = renderMeetingPage({ meetingId: "team:a", nodeId: "m1", pid: 42, epoch: 3 });
    expect(page.html).toContain('<span id="node">served by m1 (pid 42)</span>');
    for (const id of ["messages", "message-input", "send", "retry-dialog", "retry-button", "retry-countdown"]) expect(page.html).toContain(`id="${id}"`);
    expect(page.html).toContain("The meeting server stopped responding. Try again?");
    const nonce = /script-src 'nonce-([^']+)'/.exec(page.headers["content-security-policy"]!)![1]!;
    expect(page.html).toContain(`<script nonce="${nonce}">`);
  });
});

describe("demo server with a fake coordinator", () => {
  let fake: FakeCoordinator;
  let server: DemoServer;
  let base: string;
  const clients: WsClient[] = [];

  beforeAll(async () => {
    fake = await FakeCoordinator.start({ members: 1, heartbeatIntervalMs: 50, leaseTtlMs: 600 });
    const config = validateDemoServerConfig({ nodeId: "d1", listen: "127.0.0.1:0", coordinators: fake.addresses, checkpointIntervalMs: 50, assignmentWaitMs: 500 });
    server = await startDemoServer(config, silent);
    base = `http://${server.address}`;
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.ws.terminate();
  });
  afterAll(async () => {
    await server?.close({ deregister: false });
    await fake?.close();
  });

  const connect = async (meetingId: string): Promise<WsClient> => {
    const c = await WsClient.open(`ws://${server.address}/meetings/${meetingId}/ws`);
    clients.push(c);
    return c;
  };

  it("registers its actual address and answers /healthz", async () => {
    expect(fake.nodes.get("d1")!.address).toBe(server.address);
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ nodeId: "d1", meetings: 0 });
  });

  it("serves the page of a held meeting, waiting for an assignment a little behind the request", async () => {
    const pending = fetch(`${base}/meetings/late-1/?name=ann`);
    // Lets the request get there first, so that it is the one that waits; on a
    // loaded machine it may come later and find the meeting held (no failure).
    await sleep(100);
    fake.assign("late-1", "d1");
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(await res.text()).toContain("served by d1 (pid ");
    const bare = await fetch(`${base}/meetings/late-1?name=ann`, { redirect: "manual" });
    expect(bare.status).toBe(308);
    expect(bare.headers.get("location")).toBe("./late-1/?name=ann");
  });

  it("answers 421 not_here after the wait, 400 for bad ids, JSON 404 elsewhere (HTTP and upgrade)", async () => {
    const started = Date.now();
    const res = await fetch(`${base}/meetings/elsewhere/`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    expect(res.status).toBe(421);
    expect(await res.json()).toEqual({ error: "not_here", message: "meeting elsewhere is not served by node d1" });
    expect(await upgradeRefusal(`ws://${server.address}/meetings/elsewhere/ws`)).toMatchObject({ status: 421, body: { error: "not_here" } });
    const bad = await fetch(`${base}/meetings/bad%20id/`);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: "invalid_meeting_id", message: 'the meeting id in the path must be a meeting id: 1 to 128 letters, digits, ".", "_", ":" or "-"; got "bad id" (a space is not allowed)' });
    expect(await upgradeRefusal(`ws://${server.address}/meetings/bad%20id/ws`)).toMatchObject({ status: 400, body: { error: "invalid_meeting_id" } });
    expect(await upgradeRefusal(`ws://${server.address}/elsewhere`)).toMatchObject({ status: 404, body: { error: "not_found" } });
    const nf = await fetch(`${base}/nothing`);
    expect([nf.status, (await nf.json()).error]).toEqual([404, "not_found"]);
    const post = await fetch(`${base}/meetings/late-1/`, { method: "POST", body: "x" });
    expect(post.status).toBe(405);
  });

  it("runs a chat: welcome, join, say, participants; bad input is answered, not fatal", async () => {
    fake.assign("chat-1", "d1");
    await waitUntil("assignment", () => server.meetings().includes("chat-1"));
    const a = await connect("chat-1");
    expect(await a.next("welcome")).toMatchObject({ nodeId: "d1", pid: process.pid, epoch: 1, history: [], participants: [] });
    a.send({ type: "join", name: "ann" });
    expect(await a.next("participants")).toEqual({ type: "participants", participants: ["ann"] });
    const b = await connect("chat-1");
    await b.next("welcome");
    b.send({ type: "say", text: "too early" });
    expect(await b.next("error")).toMatchObject({ error: "not_joined" });
    b.send({ type: "join", name: "bo" });
    await a.next("participants", (m) => m.participants.length === 2);
    b.send({ type: "say", text: "hello <all>" });
    for (const c of [a, b]) expect(await c.next("message")).toMatchObject({ from: "bo", text: "hello <all>", at: expect.any(Number) });
    a.ws.send("{{{");
    expect(await a.next("error")).toMatchObject({ error: "bad_message" });
    a.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    expect(await a.next("error")).toMatchObject({ error: "bad_message" });
    a.send({ type: "ping" });
    await a.next("pong");
    b.ws.send("x".repeat(17 * 1024));
    expect((await b.closed).code).toBe(1009);
    expect(await a.next("participants")).toEqual({ type: "participants", participants: ["ann"] });
    const state = await (await fetch(`${base}/meetings/chat-1/state`)).json();
    expect(state).toMatchObject({ meetingId: "chat-1", epoch: 1, participants: ["ann"], history: [{ from: "bo", text: "hello <all>" }] });
  });

  it("checkpoints a room that changed, and only then", async () => {
    fake.assign("cp-1", "d1");
    await waitUntil("assignment", () => server.meetings().includes("cp-1"));
    // That nothing is saved is the point: four checkpoint intervals (50 ms) pass.
    await sleep(200);
    expect(fake.checkpoints.has("cp-1")).toBe(false);
    const a = await connect("cp-1");
    a.send({ type: "join", name: "ann" });
    for (const text of ["one", "two"]) a.send({ type: "say", text });
    await waitUntil("checkpoint", () => (fake.checkpoints.get("cp-1") ? decodeRoomState(fake.checkpoints.get("cp-1")!.state).length === 2 : false));
    const saves = () => fake.callsOf("SaveCheckpoint").filter((c) => c.request.meeting_id === "cp-1").length;
    const before = saves();
    // That nothing more is saved is the point: six checkpoint intervals (50 ms) pass.
    await sleep(300);
    expect(saves()).toBe(before);
  });

  it("restores a moved-in meeting from its checkpoint, and closes sockets with 4001 when it moves away", async () => {
    fake.assign("mv-1", "elsewhere-node");
    fake.putCheckpoint("mv-1", 5, encodeRoomState([{ from: "ann", text: "before the move", at: 1 }]));
    fake.assign("mv-1", "d1");
    await waitUntil("assignment", () => server.meetings().includes("mv-1"));
    const a = await connect("mv-1");
    expect(await a.next("welcome")).toMatchObject({ epoch: 2, history: [{ from: "ann", text: "before the move", at: 1 }] });
    fake.addNode("d2");
    fake.assign("mv-1", "d2");
    expect(await a.closed).toEqual({ code: 4001, reason: "moved" });
    expect(server.meetings()).not.toContain("mv-1");
    expect((await fetch(`${base}/meetings/mv-1/`)).status).toBe(421);
    fake.putCheckpoint("bad-1", 1, "not msgpack at all");
    fake.assign("bad-1", "d1");
    await waitUntil("assignment", () => server.meetings().includes("bad-1"));
    const b = await connect("bad-1");
    expect(await b.next("welcome")).toMatchObject({ history: [] });
  });

  it("refuses a malformed handshake with JSON", async () => {
    fake.assign("hs-1", "d1");
    await waitUntil("assignment", () => server.meetings().includes("hs-1"));
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port: Number(server.address.split(":")[1]), path: "/meetings/hs-1/ws", headers: { Connection: "Upgrade", Upgrade: "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "short" } });
      req.on("response", (r) => {
        let body = "";
        r.on("data", (c: Buffer) => (body += c.toString()));
        r.on("end", () => resolve({ status: r.statusCode ?? 0, body }));
      });
      req.on("error", reject);
      req.end();
    });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ error: "bad_handshake", message: expect.stringContaining("Sec-WebSocket-Key") });
  });

  it("a graceful close saves what changed, deregisters, and sends everyone 4001 moved", async () => {
    // A checkpoint interval far beyond the test: only the final save can carry the message.
    const config = validateDemoServerConfig({ nodeId: "d9", listen: "127.0.0.1:0", coordinators: fake.addresses, checkpointIntervalMs: 600_000 });
    const leaving = await startDemoServer(config, silent);
    fake.assign("gc-1", "d9");
    await waitUntil("assignment", () => leaving.meetings().includes("gc-1"));
    const a = await WsClient.open(`ws://${leaving.address}/meetings/gc-1/ws`);
    clients.push(a);
    a.send({ type: "join", name: "ann" });
    a.send({ type: "say", text: "last words" });
    await a.next("message");
    await leaving.close();
    expect(await a.closed).toEqual({ code: 4001, reason: "moved" });
    expect(decodeRoomState(fake.checkpoints.get("gc-1")!.state)).toMatchObject([{ from: "ann", text: "last words" }]);
    expect(fake.nodes.has("d9")).toBe(false);
    expect(fake.meetings.get("gc-1")!.owner).toBe("");
  });
});

const pkg = loadProto("convene.proto");
const CoordinatorClient = lookup<grpc.ServiceClientConstructor>(pkg, "convene.v1.Coordinator");

describe("failover through three real coordinator members", () => {
  const cluster = new MemberCluster(["n1", "n2", "n3"], undefined, { app: "coordinator" });
  let coordinator: grpc.Client;
  const servers: DemoServer[] = [];

  beforeAll(async () => {
    for (const id of ["n1", "n2", "n3"]) cluster.start(id);
    await cluster.waitForLeader();
    await cluster.waitForAll();
    coordinator = new CoordinatorClient(cluster.addresses.get("n2")!, grpc.credentials.createInsecure());
    const coordinators = [...cluster.addresses.values()];
    for (const nodeId of ["demo-a", "demo-b"]) {
      servers.push(await startDemoServer(validateDemoServerConfig({ nodeId, listen: "127.0.0.1:0", coordinators, checkpointIntervalMs: 200 }), silent));
    }
  }, 60_000);

  afterAll(async () => {
    for (const s of servers) await s.close({ deregister: false }).catch(() => undefined);
    coordinator?.close();
    await cluster.close();
  });

  it("the other server takes the meeting over with its full history", async () => {
    const route = await unary<{ node_id: string; address: string; epoch: number }>(coordinator, "GetRoute", { meeting_id: "standup:42", create: true, region: "" }, 10_000);
    const owner = servers.find((s) => s.nodeId === route.node_id)!;
    const other = servers.find((s) => s !== owner)!;
    expect(route.address).toBe(owner.address);

    // The server that does not hold it answers 421 after waiting for an assignment that never comes.
    const started = Date.now();
    const misdirected = await fetch(`http://${other.address}/meetings/standup:42/`);
    expect(misdirected.status).toBe(421);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
    expect(await misdirected.json()).toMatchObject({ error: "not_here" });

    const a = await WsClient.open(`ws://${route.address}/meetings/standup:42/ws`);
    expect(await a.next("welcome")).toMatchObject({ nodeId: owner.nodeId, epoch: route.epoch, history: [] });
    a.send({ type: "join", name: "ann" });
    const texts = ["first", "second", "third ✓"];
    for (const text of texts) a.send({ type: "say", text });
    for (const text of texts) await a.next("message", (m) => m.text === text);
    // The kill comes once the coordinator holds the whole history (however late the save, on a loaded machine).
    const checkpointed = async (): Promise<string[]> => {
      const c = await unary<{ state: Buffer }>(coordinator, "GetCheckpoint", { meeting_id: "standup:42" }, 5_000).catch(() => undefined);
      return c ? decodeRoomState(c.state).map((m) => m.text) : [];
    };
    await expect.poll(checkpointed, { timeout: 20_000, interval: 50 }).toEqual(texts);

    const killedAt = Date.now();
    await owner.crash();
    await a.closed;
    await waitUntil("the meeting on the other server", () => other.meetings().includes("standup:42"), 20_000);
    const tookMs = Date.now() - killedAt;

    const b = await WsClient.open(`ws://${other.address}/meetings/standup:42/ws`);
    const welcome = await b.next("welcome");
    expect(welcome).toMatchObject({ nodeId: other.nodeId, epoch: route.epoch + 1 });
    expect(welcome.history.map((m: ChatMessage) => [m.from, m.text])).toEqual(texts.map((t) => ["ann", t]));
    b.ws.close();
    const now = await unary<{ node_id: string; epoch: number }>(coordinator, "GetRoute", { meeting_id: "standup:42", create: false, region: "" });
    expect(now).toMatchObject({ node_id: other.nodeId, epoch: route.epoch + 1 });
    expect(tookMs).toBeLessThan(15_000);
  }, 90_000);
});
