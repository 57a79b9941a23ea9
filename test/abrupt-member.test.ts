/**
 * A coordinator member process under abrupt TCP behaviour on its gRPC port
 * (issue 16 §1), with HTTP/2 written frame by frame (support/raw-h2.ts):
 * resets before the HTTP/2 connection is up (mid-preface) and after (an
 * open stream), mid-request-message and mid-response, half-open
 * connections, 200 half-sent requests and 100 connections with open
 * streams reset at once, a client that never reads 5 MiB of answers, and a
 * peer that resets every connection (a learner whose address resets). The
 * member is the real CLI process; after each case it is the same pid and
 * answers the standard gRPC health check (SERVING); at the end its
 * resident memory has settled.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NEWEST_CLUSTER_VERSION, formatsAt } from "../src/coordinator/formats.js";
import { loadProto, lookup } from "../src/wire/proto.js";
import { MiB, RawConnection, openMany, pidAlive, pollUntil, resetAll, rssBytes } from "./support/abrupt-tcp.js";
import { FakeMeetingNode } from "./support/fake-meeting-node.js";
import { MemberCluster, unary } from "./support/member-cluster.js";
import { PREFACE, grpcData, grpcHeaders, grpcRequest, hasDataOn, opening, stringFields } from "./support/raw-h2.js";
import { TcpRelay } from "./support/tcp-relay.js";

const pkg = loadProto("convene.proto");
const CoordinatorClient = lookup<grpc.ServiceClientConstructor>(pkg, "convene.v1.Coordinator");
const MemberAdmin = lookup<grpc.ServiceClientConstructor>(loadProto("member.proto"), "convene.member.v1.MemberAdmin");
const healthPkg = grpc.loadPackageDefinition(protoLoader.loadSync(healthProtoPath, { keepCase: true, enums: Number, defaults: true }));
const Health = lookup<grpc.ServiceClientConstructor>(healthPkg, "grpc.health.v1.Health");

const HOST = "127.0.0.1";
const BIG_MEETING = "edge-big";
/** The checkpoint GetCheckpoint answers with; 26 of them make over 5 MiB. */
const STATE_BYTES = 200 * 1024;
const BIG_ANSWERS = Math.ceil((5 * MiB) / STATE_BYTES);
/**
 * Growth of the member's resident memory over two more rounds of every
 * case, after a first round let V8 size its heap: each round opens and
 * resets over 300 connections and serializes over 10 MiB of answers (two
 * sets of 5 MiB), half of them to a client that never reads; a leak of
 * either shows as a multiple of it.
 */
const RSS_GROWTH_BOUND = 48 * MiB;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("a coordinator member process under abrupt TCP behaviour", () => {
  const cluster = new MemberCluster(["n1"], undefined, { app: "coordinator" });
  let endpoint = { host: HOST, port: 0 };
  let pid = 0;
  let health: grpc.Client;
  let node: FakeMeetingNode;

  const getCheckpoint = (streamId: number) => grpcRequest(streamId, "/convene.v1.Coordinator/GetCheckpoint", stringFields({ 1: BIG_MEETING }));
  const watchHealth = (streamId: number) => grpcRequest(streamId, "/grpc.health.v1.Health/Watch", stringFields({ 1: "" }));
  const halfRequest = (): Buffer =>
    Buffer.concat([opening(), grpcHeaders(1, "/convene.v1.Coordinator/GetRoute"), grpcData(1, Buffer.alloc(100, 0x0a), { end: false, declaredLength: 100_000 })]);

  async function expectServing(): Promise<void> {
    expect(cluster.pid("n1")).toBe(pid);
    expect(pidAlive(pid), `the member exited\n${cluster.recentLogs()}`).toBe(true);
    const answer = await unary<{ status: number }>(health, "Check", { service: "" }, 5_000);
    expect(answer.status, "health check").toBe(1); // SERVING
  }

  async function resetMidPreface(): Promise<void> {
    const silentThenReset = await RawConnection.open(endpoint);
    silentThenReset.reset();
    const half = await RawConnection.open(endpoint);
    await half.write(PREFACE.subarray(0, 10));
    half.reset();
    await expectServing();
  }

  async function resetOpenStream(): Promise<void> {
    const c = await RawConnection.open(endpoint);
    await c.write(Buffer.concat([opening(), watchHealth(1)]));
    await c.until("the stream's first answer", (x) => hasDataOn(x.received, 1));
    await sleep(300);
    c.reset();
    await expectServing();
  }

  async function resetMidRequest(): Promise<void> {
    const c = await RawConnection.open(endpoint);
    await c.write(halfRequest());
    c.reset();
    await expectServing();
  }

  async function resetMidResponse(): Promise<void> {
    const c = await RawConnection.open(endpoint);
    const requests = Array.from({ length: BIG_ANSWERS }, (_, i) => getCheckpoint(1 + 2 * i));
    await c.write(Buffer.concat([opening(), ...requests]));
    await c.until("the first 256 KiB of answers", (x) => x.receivedBytes >= 256 * 1024);
    c.reset();
    await expectServing();
  }

  async function halfOpen(): Promise<void> {
    const partials = [PREFACE.subarray(0, 10), halfRequest()];
    const silent = await Promise.all(
      partials.map(async (partial) => {
        const c = await RawConnection.open(endpoint);
        await c.write(partial);
        return c;
      }),
    );
    await expectServing();
    for (const partial of partials) {
      const ended = await RawConnection.open(endpoint);
      await ended.write(partial);
      ended.endWrite();
      expect(await ended.closedWithin(10_000), `a half-closed connection was kept open after ${partial.length} bytes`).toBe(true);
    }
    for (const c of silent) c.destroy();
    await expectServing();
  }

  async function manyHalfSentReset(): Promise<void> {
    const conns = await openMany(endpoint, 200, halfRequest());
    resetAll(conns);
    await expectServing();
  }

  async function manyOpenStreamsReset(): Promise<void> {
    const conns = await openMany(endpoint, 100, Buffer.concat([opening(), watchHealth(1)]), 25);
    await Promise.all(conns.map((c) => c.until("the stream's first answer", (x) => hasDataOn(x.received, 1))));
    resetAll(conns);
    await expectServing();
  }

  async function neverReads(): Promise<void> {
    const c = await RawConnection.open(endpoint);
    // Not reading from the start: the connection's receive window stays small.
    c.stopReading();
    await c.write(Buffer.concat([opening(), ...Array.from({ length: BIG_ANSWERS }, (_, i) => getCheckpoint(1 + 2 * i))]));
    await expectServing();
    c.destroy();
    await expectServing();
  }

  const cases: [string, () => Promise<void>][] = [
    ["a client that resets before its HTTP/2 connection is up (mid-preface)", resetMidPreface],
    ["a client that resets 300 ms after its stream was answered (an open Health/Watch)", resetOpenStream],
    ["a client that resets mid-request-message", resetMidRequest],
    ["a client that resets mid-response (5 MiB of checkpoints being written)", resetMidResponse],
    ["half-open clients: half a preface or request then silence holds no one up; then FIN is closed", halfOpen],
    ["200 half-sent requests reset at once", manyHalfSentReset],
    ["100 connections with an open stream reset at once", manyOpenStreamsReset],
    ["a client that never reads 5 MiB of answers", neverReads],
  ];

  beforeAll(async () => {
    const address = cluster.addresses.get("n1")!;
    endpoint = { host: HOST, port: Number(address.split(":")[1]) };
    cluster.start("n1");
    await cluster.waitForLeader(60_000);
    pid = cluster.pid("n1")!;
    health = new Health(address, grpc.credentials.createInsecure());
    // A meeting with a 200 KiB checkpoint: what GetCheckpoint answers with.
    node = new FakeMeetingNode("edge-node", address, 9, 10);
    await node.start(true);
    const coordinator = new CoordinatorClient(address, grpc.credentials.createInsecure());
    const route = await unary<{ node_id: string; epoch: number }>(coordinator, "GetRoute", { meeting_id: BIG_MEETING, create: true, region: "" }, 10_000);
    expect(route.node_id).toBe("edge-node");
    coordinator.close();
    await unary(node.client, "SaveCheckpoint", {
      node_id: "edge-node", generation: node.generation, meeting_id: BIG_MEETING, epoch: route.epoch, sequence: 1, state: Buffer.alloc(STATE_BYTES, 0x63),
    }, 10_000);
    await expectServing();
  }, 150_000);

  afterAll(async () => {
    node?.stop();
    health?.close();
    await cluster.close();
  });

  for (const [name, run] of cases) it(name, run);

  it("a peer that resets every connection (a learner at an address that resets): the member keeps serving", async () => {
    // From cluster version 3 a learner's release is checked before it is added: a stand-in
    // answers MemberAdmin.Status through the relay, then the relay resets everything.
    const standIn = new grpc.Server();
    standIn.addService(MemberAdmin.service, {
      Status: (_call: unknown, answer: grpc.sendUnaryData<unknown>) => answer(null, { formats: formatsAt(NEWEST_CLUSTER_VERSION) }),
    });
    const standInPort = await new Promise<number>((resolve, reject) =>
      standIn.bindAsync(`${HOST}:0`, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
    );
    const resetting = await TcpRelay.start({ host: HOST, port: standInPort });
    try {
      await unary(cluster.admin("n1"), "AddLearner", { id: "n2", address: resetting.address }, 10_000);
      resetting.resetFromNowOn();
      standIn.forceShutdown();
      const before = resetting.accepted;
      await pollUntil("the member to dial the learner a few times", () => resetting.accepted, (n) => n >= before + 3, {
        timeoutMs: 30_000,
        fatal: () => (pidAlive(pid) ? undefined : `the member exited\n${cluster.recentLogs()}`),
      });
      await expectServing();
      await unary(cluster.admin("n1"), "Remove", { id: "n2", address: "" }, 10_000);
    } finally {
      standIn.forceShutdown();
      await resetting.close();
    }
    await expectServing();
  });

  it(`stays the same process, serving, and its memory settles: two more rounds of every case grow it by less than ${RSS_GROWTH_BOUND / MiB} MiB`, async () => {
    const settled = rssBytes(pid);
    for (let round = 0; round < 2; round++) for (const [, run] of cases) await run();
    const after = rssBytes(pid);
    console.log(`member RSS: after the first round ${(settled / MiB).toFixed(1)} MiB, after two more ${(after / MiB).toFixed(1)} MiB`);
    expect(after - settled).toBeLessThan(RSS_GROWTH_BOUND);
    await expectServing();
  }, 180_000);
});
