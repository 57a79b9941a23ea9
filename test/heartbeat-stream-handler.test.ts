/**
 * The member's HeartbeatStream handler on a real gRPC server in this
 * process, with the beat's work in the test's hands: at most
 * MAX_BEATS_IN_PROGRESS beats of a stream run at once (the rest are
 * answered RESOURCE_EXHAUSTED at once, and the stream goes on); a
 * follower forwards each beat with a deadline and names the leader, at
 * most as many at once as its forward slots (shared by every stream),
 * past which a beat is answered at once with the leader's address; a
 * stream that was itself forwarded is not forwarded again.
 */
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { BeatForwardSlots } from "../src/coordinator/service/beat-forward-slots.js";
import { MAX_BEATS_IN_PROGRESS, heartbeatStreamHandler } from "../src/coordinator/service/heartbeat-stream.js";
import type { ForwardedCall } from "../src/member/leader-forwarder.js";
import { NotLeaderError } from "../src/raft/errors.js";
import { FORWARDED_HEADER } from "../src/wire/headers.js";
import { loadProto, lookup } from "../src/wire/proto.js";

const NodeAgent = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.NodeAgent");

interface Answer {
  sequence: number;
  code: number;
  details: string;
  leader: string;
  response: { lease_ttl_ms: number } | null;
}
type Duplex = grpc.ClientDuplexStream<Record<string, unknown>, Answer>;

const timings = { heartbeatIntervalMs: 500, leaseTtlMs: 1500 };
let server: grpc.Server | undefined;
let client: grpc.Client | undefined;

afterEach(() => {
  client?.close();
  server?.forceShutdown();
});

async function serve(deps: Parameters<typeof heartbeatStreamHandler>[0]): Promise<grpc.Client> {
  server = new grpc.Server();
  server.addService(NodeAgent.service, { HeartbeatStream: heartbeatStreamHandler(deps) });
  const port = await new Promise<number>((resolve, reject) => server!.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  client = new NodeAgent(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return client;
}

function open(c: grpc.Client, metadata = new grpc.Metadata()): { stream: Duplex; got: Answer[]; until(n: number): Promise<void> } {
  const stream = (c as unknown as { HeartbeatStream(md: grpc.Metadata): Duplex }).HeartbeatStream(metadata);
  stream.on("error", () => undefined);
  const got: Answer[] = [];
  const waiters: { n: number; resolve(): void }[] = [];
  stream.on("data", (a: Answer) => {
    got.push(a);
    for (const w of waiters.filter((x) => got.length >= x.n)) w.resolve();
  });
  return { stream, got, until: (n) => (got.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))) };
}

const unusedForwarder = {
  forward: () => Promise.reject(new Error("not expected to forward")),
  leaderAddress: () => "",
};

describe("HeartbeatStream handler", () => {
  it("runs at most MAX_BEATS_IN_PROGRESS beats of a stream at once and refuses the rest at once", async () => {
    const running: (() => void)[] = [];
    const c = await serve({
      heartbeat: () => new Promise((resolve) => running.push(() => resolve({ lease_ttl_ms: 1500, draining: false }))),
      forwarder: unusedForwarder,
      timings,
      forwardSlots: new BeatForwardSlots(),
    });
    const { stream, got, until } = open(c);
    const extra = 20;
    for (let i = 1; i <= MAX_BEATS_IN_PROGRESS + extra; i++) stream.write({ node_id: "s1", generation: 1, sequence: i });
    await until(extra);
    expect(running).toHaveLength(MAX_BEATS_IN_PROGRESS);
    expect(got.map((a) => a.code)).toEqual(Array(extra).fill(grpc.status.RESOURCE_EXHAUSTED));
    expect(got.map((a) => a.sequence)).toEqual(Array.from({ length: extra }, (_, i) => MAX_BEATS_IN_PROGRESS + 1 + i));
    // Once they finish, the stream takes beats again.
    for (const finish of running.splice(0)) finish();
    await until(MAX_BEATS_IN_PROGRESS + extra);
    stream.write({ node_id: "s1", generation: 1, sequence: 9999 });
    await new Promise((r) => setTimeout(r, 50));
    expect(running).toHaveLength(1);
    running[0]!();
    await until(MAX_BEATS_IN_PROGRESS + extra + 1);
    expect(got.at(-1)).toMatchObject({ sequence: 9999, code: grpc.status.OK });
    stream.cancel();
  });

  it("on a follower, forwards each beat to the leader with a deadline of its own and names the leader", async () => {
    const forwarded: { request: unknown; deadline: unknown }[] = [];
    const c = await serve({
      heartbeat: () => Promise.reject(new NotLeaderError("n2", "127.0.0.1:7002")),
      forwarder: {
        forward: <Res>(_method: string, request: unknown, caller?: ForwardedCall): Promise<Res> => {
          forwarded.push({ request, deadline: caller?.getDeadline() });
          return Promise.resolve({ lease_ttl_ms: 1500, draining: true } as Res);
        },
        leaderAddress: () => "127.0.0.1:7002",
      },
      timings,
      forwardSlots: new BeatForwardSlots(),
    });
    const { stream, got, until } = open(c);
    const before = Date.now();
    stream.write({ node_id: "s1", generation: 4, sequence: 7 });
    await until(1);
    expect(got[0]).toMatchObject({ sequence: 7, code: grpc.status.OK, leader: "127.0.0.1:7002", response: { draining: true } });
    expect(forwarded[0]!.request).toMatchObject({ node_id: "s1", generation: 4 });
    // A forwarded beat is worth nothing past the agent's own deadline: at most a third of the lease (and at least an interval).
    const deadline = forwarded[0]!.deadline as number;
    expect(deadline - before).toBeGreaterThanOrEqual(500);
    expect(deadline - Date.now()).toBeLessThanOrEqual(500);
    stream.cancel();
  });

  it("forwards at most as many beats at once as its slots, over every stream, and sends the rest to the leader at once", async () => {
    const waiting: (() => void)[] = [];
    const slots = new BeatForwardSlots(3);
    const c = await serve({
      heartbeat: () => Promise.reject(new NotLeaderError("n2", "127.0.0.1:7002")),
      forwarder: {
        forward: <Res>(): Promise<Res> => new Promise<Res>((resolve) => waiting.push(() => resolve({ lease_ttl_ms: 1500 } as Res))),
        leaderAddress: () => "127.0.0.1:7002",
      },
      timings,
      forwardSlots: slots,
    });
    const a = open(c);
    const b = open(c);
    a.stream.write({ node_id: "s1", generation: 1, sequence: 1 });
    a.stream.write({ node_id: "s2", generation: 1, sequence: 2 });
    b.stream.write({ node_id: "s3", generation: 1, sequence: 1 });
    await new Promise((r) => setTimeout(r, 50));
    expect(waiting).toHaveLength(3);
    b.stream.write({ node_id: "s4", generation: 1, sequence: 2 });
    a.stream.write({ node_id: "s5", generation: 1, sequence: 3 });
    await Promise.all([a.until(1), b.until(1)]);
    for (const got of [a.got[0], b.got[0]]) {
      expect(got).toMatchObject({ code: grpc.status.UNAVAILABLE, leader: "127.0.0.1:7002" });
      expect(got!.details).toMatch(/already forwards 3 heartbeats.*send heartbeats to the leader at 127\.0\.0\.1:7002/);
    }
    expect(waiting).toHaveLength(3);
    expect(slots.refused).toBe(2);
    // Answered beats give their slots back.
    for (const finish of waiting.splice(0)) finish();
    await Promise.all([a.until(3), b.until(2)]);
    expect(slots.inUse).toBe(0);
    a.stream.write({ node_id: "s1", generation: 1, sequence: 4 });
    await new Promise((r) => setTimeout(r, 50));
    expect(waiting).toHaveLength(1);
    waiting[0]!();
    await a.until(4);
    expect(a.got.at(-1)).toMatchObject({ sequence: 4, code: grpc.status.OK });
    a.stream.cancel();
    b.stream.cancel();
  });

  it("gives a slot back when the forward fails", async () => {
    const slots = new BeatForwardSlots(1);
    const c = await serve({
      heartbeat: () => Promise.reject(new NotLeaderError("n2", "127.0.0.1:7002")),
      forwarder: { forward: () => Promise.reject(Object.assign(new Error("deadline"), { code: grpc.status.DEADLINE_EXCEEDED })), leaderAddress: () => "127.0.0.1:7002" },
      timings,
      forwardSlots: slots,
    });
    const { stream, got, until } = open(c);
    stream.write({ node_id: "s1", generation: 1, sequence: 1 });
    await until(1);
    stream.write({ node_id: "s1", generation: 1, sequence: 2 });
    await until(2);
    expect(got.map((a) => a.code)).toEqual([grpc.status.DEADLINE_EXCEEDED, grpc.status.DEADLINE_EXCEEDED]);
    expect(slots.refused).toBe(0);
    expect(slots.inUse).toBe(0);
    stream.cancel();
  });

  it("does not forward a stream that was itself forwarded: the beat is answered UNAVAILABLE", async () => {
    const c = await serve({ heartbeat: () => Promise.reject(new NotLeaderError("", "")), forwarder: unusedForwarder, timings, forwardSlots: new BeatForwardSlots() });
    const md = new grpc.Metadata();
    md.set(FORWARDED_HEADER, "n9");
    const { stream, got, until } = open(c, md);
    stream.write({ node_id: "s1", generation: 1, sequence: 1 });
    await until(1);
    expect(got[0]).toMatchObject({ sequence: 1, code: grpc.status.UNAVAILABLE, leader: "" });
    stream.cancel();
  });

  it("answers what it has in progress after the client closes its side, then ends the stream OK", async () => {
    const running: (() => void)[] = [];
    const c = await serve({ heartbeat: () => new Promise((resolve) => running.push(() => resolve({ lease_ttl_ms: 1 }))), forwarder: unusedForwarder, timings, forwardSlots: new BeatForwardSlots() });
    const { stream, got } = open(c);
    const status = new Promise<grpc.StatusObject>((resolve) => stream.on("status", resolve));
    stream.write({ node_id: "s1", generation: 1, sequence: 1 });
    stream.write({ node_id: "s1", generation: 1, sequence: 2 });
    stream.end();
    await new Promise((r) => setTimeout(r, 50));
    expect(running).toHaveLength(2);
    for (const finish of running) finish();
    expect((await status).code).toBe(grpc.status.OK);
    expect(got.map((a) => a.sequence).sort()).toEqual([1, 2]);
  });
});
