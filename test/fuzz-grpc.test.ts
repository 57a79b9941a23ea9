/**
 * Hostile input against every gRPC method a coordinator member serves
 * (issue 6, fuzzing): three real member processes on 127.0.0.1, meeting
 * servers played by raw gRPC clients, and thousands of seeded requests
 * (FUZZ_SEED to replay another run) to every method of NodeAgent,
 * Coordinator, RouteFeed, MemberAdmin, RaftTransport, health and
 * reflection, spread over the three members (followers forward):
 * - typed: ids that break API.md's rules, huge strings, numbers that are
 *   no uint64, forged generations, epochs and sequences of real nodes and
 *   meetings, oversize checkpoints, misaddressed raft batches;
 * - raw: request bytes that are not valid protobuf, or are protobuf of the
 *   wrong shape, sent with identity serializers.
 * Every request is judged after decoding it as the server does
 * (support/grpc-fuzz-cases.ts); one that would be valid and change the
 * cluster is never sent. Checked: no member dies, every bad request gets
 * the error status API.md gives it (never INTERNAL, never a hang) with a
 * message, naming the field for INVALID_ARGUMENT; and the replicated state
 * (nodes, meetings, checkpoints, each member's route table, the audit
 * trail of applied writes) is what it was before.
 *
 * Knobs: FUZZ_SEED; FUZZ_GRPC_TYPED, FUZZ_GRPC_RAW, FUZZ_GRPC_RAW_ONLY,
 * FUZZ_GRPC_H2 (cases per method and of HTTP/2 framing); FUZZ_VERBOSE=1
 * prints the tally of outcomes per method.
 */
import http2, { type ClientHttp2Session } from "node:http2";
import * as grpc from "@grpc/grpc-js";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { MAX_GRPC_MESSAGE_BYTES } from "../src/member/member.js";
import { loadProto, lookup } from "../src/wire/proto.js";
import { AuditWatcher, type StateDigest, digestDiff, memberRouteTable, stateDigest, writeBarrier } from "./support/cluster-digest.js";
import { FakeMeetingNodes } from "./support/fake-meeting-node.js";
import { type FuzzWorld, type GrpcCase, type Verdict, classify, rawFrames, typedRequests } from "./support/grpc-fuzz-cases.js";
import { memberMethods } from "./support/grpc-fuzz-methods.js";
import { FuzzLedger, LoopLag, drawPatiently, freeBasePort, fuzzSeed, processAlive, runPool } from "./support/fuzz-run.js";
import { MemberCluster, unary } from "./support/member-cluster.js";
import { type CallOutcome, h2Call, rawCall } from "./support/raw-grpc.js";
import { NEWEST_CLUSTER_VERSION } from "../src/coordinator/formats.js";

const CoordinatorClient = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.Coordinator");
const NodeAgentClient = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.NodeAgent");

/** Requests per method: typed (where the method has typed hostile values) and raw. */
const TYPED_PER_METHOD = Number(process.env.FUZZ_GRPC_TYPED ?? 170);
const RAW_PER_METHOD = Number(process.env.FUZZ_GRPC_RAW ?? 90);
const RAW_ONLY_PER_METHOD = Number(process.env.FUZZ_GRPC_RAW_ONLY ?? 160);
const H2_CASES = Number(process.env.FUZZ_GRPC_H2 ?? 400);
const CONCURRENCY = 16;
/** Bound on any one answer: more is a hang. */
const CALL_TIMEOUT_MS = 8_000;
const MEMBERS = ["n1", "n2", "n3"];

const STATUS_NAME = Object.fromEntries(Object.entries(grpc.status).filter(([, v]) => typeof v === "number").map(([k, v]) => [v, k])) as Record<number, string>;

/** What is wrong with `outcome` as the answer a request judged `verdict` got, if anything. */
function problemWith(verdict: Verdict, outcome: CallOutcome): string | undefined {
  const { code, details } = outcome;
  const got = `${STATUS_NAME[code] ?? code} ${JSON.stringify(details.slice(0, 200))}`;
  if (code === grpc.status.DEADLINE_EXCEEDED) return `no answer within ${CALL_TIMEOUT_MS} ms: ${got}`;
  if (code === grpc.status.INTERNAL || code === grpc.status.UNKNOWN) return `internal error: ${got}`;
  if (code === grpc.status.UNAVAILABLE) return `unavailable although the cluster is healthy: ${got}`;
  if (code !== grpc.status.OK && details.trim() === "") return `an error without a message: ${got}`;
  switch (verdict.kind) {
    case "malformed":
      return code === grpc.status.INVALID_ARGUMENT ? undefined : `undecodable bytes (${verdict.reason}) got ${got}`;
    case "reject": {
      if (!verdict.codes.includes(code)) return `expected ${verdict.codes.map((c) => STATUS_NAME[c]).join(" or ")}, got ${got}`;
      if (code === grpc.status.INVALID_ARGUMENT && verdict.fields.length > 0 && !verdict.fields.some((f) => details.includes(f))) {
        return `INVALID_ARGUMENT should name ${verdict.fields.join(" or ")}: ${got}`;
      }
      return undefined;
    }
    case "dropped":
      return code === grpc.status.OK || code === grpc.status.ABORTED ? undefined : `a well-addressed raft stream should end OK, got ${got}`;
    case "read":
      return undefined;
    case "unsafe":
      return "an unsafe request was sent";
  }
}

describe("hostile gRPC input against three coordinator members", () => {
  let cluster: MemberCluster;
  let nodes: FakeMeetingNodes;
  const seed = fuzzSeed();
  let coordinator: grpc.Client;
  let world: FuzzWorld;
  let before: StateDigest;
  const pids = new Map<string, number>();

  beforeAll(async () => {
    cluster = new MemberCluster(MEMBERS, await freeBasePort(MEMBERS.length), { app: "coordinator" });
    for (const id of MEMBERS) cluster.start(id);
    await cluster.waitForLeader(30_000);
    await cluster.waitForAll(30_000);
    // The judges expect what cluster version 3 accepts (moves, drains with a deadline, load); the group raises it by itself.
    await cluster.waitForClusterVersion(NEWEST_CLUSTER_VERSION, 30_000);
    for (const id of MEMBERS) pids.set(id, cluster.pid(id)!);
    coordinator = new CoordinatorClient(cluster.addresses.get("n1")!, grpc.credentials.createInsecure());
    // Two live meeting servers, and one that registers and goes silent: declared dead before any meeting exists, so it holds none.
    nodes = await FakeMeetingNodes.start([
      { nodeId: "fz-dead", coordinator: cluster.addresses.get("n3")!, port: 9, capacity: 5, alive: false },
      { nodeId: "fz-m1", coordinator: cluster.addresses.get("n1")!, port: 9100, capacity: 100, alive: true },
      { nodeId: "fz-m2", coordinator: cluster.addresses.get("n2")!, port: 9101, capacity: 100, alive: true },
    ]);
    const agent = new NodeAgentClient(cluster.addresses.get("n2")!, grpc.credentials.createInsecure());
    const listNodes = () => unary<{ nodes: { node_id: string; generation: number; state: number }[] }>(coordinator, "ListNodes", {}, 5_000);
    await vi.waitFor(async () => expect((await listNodes()).nodes.find((n) => n.node_id === "fz-dead")?.state, "fz-dead declared dead").toBe(3), { timeout: 15_000, interval: 100 });
    // Meetings on the live nodes, most with a checkpoint at sequence 100.
    const meetings = new Map<string, { owner: string; epoch: number; sequence?: number; state?: Buffer }>();
    for (let i = 0; i < 12; i++) {
      const id = i % 4 === 3 ? `fz:room.${i}` : `fz-room-${i}`;
      const r = await unary<{ node_id: string; epoch: number }>(coordinator, "GetRoute", { meeting_id: id, create: true, region: "" }, 10_000);
      meetings.set(id, { owner: r.node_id, epoch: r.epoch });
    }
    for (const [id, m] of [...meetings].slice(0, 8)) {
      const state = Buffer.from(`state of ${id}`);
      await unary(agent, "SaveCheckpoint", { node_id: m.owner, generation: nodes.generations.get(m.owner), meeting_id: id, epoch: m.epoch, sequence: 100, state }, 10_000);
      meetings.set(id, { ...m, sequence: 100, state });
    }
    agent.close();
    const listed = await listNodes();
    world = {
      clusterId: "convene",
      members: MEMBERS.map((id) => ({ id, address: cluster.addresses.get(id)! })),
      nodes: new Map(listed.nodes.map((n) => [n.node_id, { generation: n.generation, dead: n.state === 3 }])),
      meetings,
      maxCheckpointBytes: 256 * 1024,
      maxMessageBytes: MAX_GRPC_MESSAGE_BYTES,
      healthServices: ["", "convene.v1.NodeAgent", "convene.v1.Coordinator", "convene.member.v1.MemberAdmin"],
    };
    before = await stateDigest(coordinator);
  }, 60_000);

  afterAll(async () => {
    nodes?.kill();
    coordinator?.close();
    await cluster?.close();
  });

  /** INTERNAL answers grpc-js gives by itself to framing it cannot read (see runH2Cases). */
  let grpcJsInternal = 0;

  /**
   * Below gRPC: HTTP/2 requests to every method path with broken gRPC
   * framing (lengths past the data or absurd, compression flags and
   * encodings that do not match, no message or several, bad timeouts and
   * content types). The payload never decodes, so no framing makes a valid
   * request: the answer is an error status or an HTTP error, never a hang.
   * grpc-js answers two of these with INTERNAL itself, before any handler
   * (a body that does not gunzip, a grpc-timeout that does not parse);
   * those are counted apart, as they cannot be changed from here.
   */
  async function runH2Cases(ledger: FuzzLedger): Promise<void> {
    const methods = memberMethods();
    const framing = fc.record({
      method: fc.constantFrom(...methods),
      member: fc.nat(MEMBERS.length - 1),
      frames: fc.array(
        fc.record({
          flag: fc.constantFrom(0, 0, 0, 1, 2, 7, 255),
          // Declared lengths never short of the payload: a shorter one would cut out a prefix, and
          // a prefix (even an empty one) can be a valid request, e.g. a leadership transfer.
          lengthDelta: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 5_000 }), fc.constant(2 ** 32 - 64)),
          // Payloads no request type decodes, however it reads the field: a varint or a length cut off,
          // an invalid wire type. (A string running past the end is no good: protobufjs shortens it.)
          payload: fc.constantFrom(Buffer.from([0x08]), Buffer.from([0x0f]), Buffer.from([0x10]), Buffer.from([0x1a, 0x80]), Buffer.from([0x08, 0x80, 0x80])),
        }),
        { maxLength: 3 },
      ),
      encoding: fc.constantFrom(undefined, "identity", "gzip", "deflate", "br", "x-garbage"),
      timeout: fc.constantFrom(undefined, "1S", "abc", "99999999999H", "-1S", "1n", ""),
      contentType: fc.constantFrom(undefined, undefined, "application/grpc+proto", "text/plain", "application/json", "application/grpcx"),
    });
    const cases = await drawPatiently(framing, H2_CASES, seed, 1_000);
    const sessions = new Map<number, ClientHttp2Session>();
    const session = (member: number): ClientHttp2Session => {
      let s = sessions.get(member);
      if (!s || s.closed || s.destroyed) {
        s = http2.connect(`http://${cluster.addresses.get(MEMBERS[member]!)}`);
        s.on("error", () => undefined);
        sessions.set(member, s);
      }
      return s;
    };
    try {
      await runPool(cases, 8, async (c) => {
        const body = Buffer.concat(
          c.frames.map((f) => {
            const head = Buffer.alloc(5);
            head.writeUInt8(f.flag, 0);
            head.writeUInt32BE(Math.max(0, Math.min(2 ** 32 - 1, f.payload.length + f.lengthDelta)), 1);
            return Buffer.concat([head, f.payload]);
          }),
        );
        const headers: Record<string, string> = {};
        if (c.encoding !== undefined) headers["grpc-encoding"] = c.encoding;
        if (c.timeout !== undefined) headers["grpc-timeout"] = c.timeout;
        if (c.contentType !== undefined) headers["content-type"] = c.contentType;
        const outcome = await h2Call(session(c.member), c.method.path, headers, body, CALL_TIMEOUT_MS);
        const target = `${c.method.id} (h2 framing)`;
        const got = `HTTP ${outcome.http} grpc-status ${outcome.grpcStatus} ${JSON.stringify(outcome.grpcMessage.slice(0, 200))}${outcome.reset ? ` reset: ${outcome.reset}` : ""}`;
        ledger.record(c.method.id, `h2 ${outcome.timedOut ? "timeout" : outcome.grpcStatus !== undefined ? STATUS_NAME[outcome.grpcStatus] : outcome.reset ? "reset" : `http-${outcome.http}`}`);
        const shown = { ...c, method: c.method.id, body: body.subarray(0, 64).toString("hex") };
        if (outcome.timedOut) return ledger.fail(target, `no answer within ${CALL_TIMEOUT_MS} ms`, shown);
        if (outcome.grpcStatus === undefined) {
          // No gRPC answer: an HTTP error (415 for a content type that is not gRPC), or the stream reset.
          if (outcome.reset === undefined && (outcome.http < 400 || outcome.http >= 600)) ledger.fail(target, `neither a gRPC status nor an HTTP error: ${got}`, shown);
          return;
        }
        const streamingRequest = c.method.kind === "client-stream" || c.method.kind === "bidi";
        if (outcome.grpcStatus === grpc.status.OK) {
          // A request stream with no complete message in it is an empty stream, which is valid.
          if (!streamingRequest) ledger.fail(target, `framing garbage answered OK: ${got}`, shown);
          return;
        }
        if (outcome.grpcMessage.trim() === "") ledger.fail(target, `an error without a message: ${got}`, shown);
        if (outcome.grpcStatus === grpc.status.INTERNAL) {
          const gunzip = (c.encoding === "gzip" || c.encoding === "deflate") && c.frames.some((f) => f.flag === 1);
          const timeout = c.timeout !== undefined && c.timeout !== "1S" && c.timeout !== "1n";
          if (gunzip || timeout) grpcJsInternal++;
          else ledger.fail(target, `internal error: ${got}`, shown);
        }
      });
    } finally {
      for (const s of sessions.values()) s.close();
    }
  }

  it("answers every hostile request with a clear error, stays up, and changes nothing", async () => {
    const started = Date.now();
    const lag = new LoopLag().start();
    console.log(`fuzz-grpc: seed ${seed} (set FUZZ_SEED to replay another)`);
    const methods = memberMethods();
    const cases: GrpcCase[] = [];
    const oversize = Buffer.alloc(MAX_GRPC_MESSAGE_BYTES + 1, 0x0a);
    for (const [m, method] of methods.entries()) {
      const typed = typedRequests(world, method);
      const streaming = method.kind === "client-stream" || method.kind === "bidi";
      if (typed) {
        const requests = await drawPatiently(streaming ? fc.array(typed, { minLength: 1, maxLength: 3 }) : typed.map((r) => [r]), TYPED_PER_METHOD, seed, 2 * m);
        for (const [i, frames] of requests.entries()) {
          const member = i % MEMBERS.length;
          // Raft frames address "@self" to mean whichever member this case calls.
          const addressed = frames.map((f) => (f.to === "@self" ? { ...f, to: MEMBERS[member] } : f));
          let encoded: Buffer[];
          try {
            encoded = addressed.map((f) => method.serialize(f));
          } catch {
            continue; // the generated codec refuses it client-side: nothing to send
          }
          cases.push({ method, member, mode: "typed", shown: addressed.length === 1 ? addressed[0] : addressed, frames: encoded });
        }
      }
      // One request over the members' 16 MiB receive limit per method (refused before decoding).
      cases.push({ method, member: m % MEMBERS.length, mode: "raw", shown: "16 MiB + 1 of 0x0a", frames: [oversize] });
      const rawCount = typed ? RAW_PER_METHOD : RAW_ONLY_PER_METHOD;
      const raw = await drawPatiently(streaming ? fc.array(rawFrames(world, method), { minLength: 1, maxLength: 3 }) : rawFrames(world, method).map((b) => [b]), rawCount, seed, 2 * m + 1);
      for (const [i, frames] of raw.entries()) cases.push({ method, member: (i + m) % MEMBERS.length, mode: "raw", shown: frames, frames });
    }

    const ledger = new FuzzLedger();
    const skipped = new Map<string, number>();
    const clients = MEMBERS.map((id) => new grpc.Client(cluster.addresses.get(id)!, grpc.credentials.createInsecure(), { "grpc.max_send_message_length": -1, "grpc.max_receive_message_length": -1 }));
    const audit = new AuditWatcher(() => cluster.admin("n2"));
    const startIndex = await audit.start();
    try {
      await runPool(cases, CONCURRENCY, async (c) => {
        const verdict = classify(world, c);
        if (verdict.kind === "unsafe") {
          skipped.set(c.method.id, (skipped.get(c.method.id) ?? 0) + 1);
          return;
        }
        // A stream that must be refused gets its whole deadline to say so; a valid watch is cut after 300 ms.
        const openMs = verdict.kind === "read" || verdict.kind === "dropped" ? 300 : CALL_TIMEOUT_MS;
        const outcome = await rawCall(clients[c.member]!, c.method.path, c.method.kind, c.frames, CALL_TIMEOUT_MS, openMs);
        ledger.record(c.method.id, `${c.mode} ${verdict.kind} ${STATUS_NAME[outcome.code]}`);
        const problem = problemWith(verdict, outcome);
        if (problem) ledger.fail(`${c.method.id} (${c.mode}, member ${MEMBERS[c.member]})`, problem, c.shown);
      });
      await runH2Cases(ledger);
    } finally {
      for (const client of clients) client.close();
      // Every write the run caused comes before the barrier in the log; the trail is read once more after it.
      await writeBarrier(MEMBERS.map((id) => cluster.addresses.get(id)!), [...world.meetings.keys()][0]!);
      await audit.stop();
    }
    const elapsed = Date.now() - started;
    const maxLagMs = lag.stop();

    // Every member is the process it was, and answers.
    for (const id of MEMBERS) {
      expect(processAlive(pids.get(id)), `${id} (pid ${pids.get(id)}) died\n${cluster.recentLogs()}`).toBe(true);
      expect(cluster.pid(id)).toBe(pids.get(id));
      expect((await cluster.status(id)).id).toBe(id);
    }
    // Every answer was the right one.
    if (ledger.failures.length > 0) console.log(`members' recent logs:\n${cluster.recentLogs()}`);
    expect(ledger.failures, `${ledger.failures.length} bad answers:\n${ledger.report()}`).toEqual([]);
    // Nothing the run sent changed the replicated state.
    const after = await stateDigest(coordinator);
    const writes = audit.writesAfter(startIndex);
    const liveness = [...audit.entries.values()].filter((e) => e.index > startIndex && e.kind === "setLiveness").map((e) => `${e.index} ${e.summary}`);
    expect(writes.map((e) => `${e.index} ${e.kind}: ${e.summary}`), "applied writes during the run").toEqual([]);
    expect(digestDiff(before, after), `the replicated state changed; liveness changes meanwhile:\n${liveness.join("\n")}`).toBe("");
    expect(audit.gaps, "audit entries the polls missed").toEqual([]);
    const tables = await Promise.all(MEMBERS.map((id) => memberRouteTable(cluster.addresses.get(id)!)));
    for (const [i, table] of tables.entries()) expect(table, `${MEMBERS[i]}'s applied route table`).toEqual(after.meetings);
    // Every method was exercised.
    const perMethod = new Map<string, number>();
    for (const [key, n] of ledger.byOutcome) perMethod.set(key.split(" ")[0]!, (perMethod.get(key.split(" ")[0]!) ?? 0) + n);
    for (const method of methods) expect(perMethod.get(method.id) ?? 0, `${method.id} requests`).toBeGreaterThanOrEqual(50);

    const refusedWrites = audit.refusedAfter(startIndex);
    console.log(
      `fuzz-grpc: ${ledger.requests} requests, ${ledger.targets.size} methods, seed ${seed}, 0 crashes ` +
        `(${elapsed} ms; ${refusedWrites} refused in Raft apply; ${[...skipped.values()].reduce((a, b) => a + b, 0)} valid-and-mutating cases not sent; ` +
        `${grpcJsInternal} INTERNAL from grpc-js's own framing checks; event loop blocked ${maxLagMs} ms at most)`,
    );
    if (process.env.FUZZ_VERBOSE) console.log([...ledger.byOutcome].sort().map(([k, n]) => `  ${k}: ${n}`).join("\n"));
    expect(ledger.requests).toBeGreaterThanOrEqual(5_000);
  }, 120_000);
});
