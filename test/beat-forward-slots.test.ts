/**
 * The follower's limit on forwarded heartbeats (beat-forward-slots.ts) on
 * the unary Heartbeat, over a real gRPC server in this process: past the
 * limit a beat is answered UNAVAILABLE at once, with the leader's address
 * in the answer's metadata (where the agent's link reads its hint), and
 * is not forwarded; a forward that ends either way gives its slot back.
 */
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { BeatForwardSlots } from "../src/coordinator/service/beat-forward-slots.js";
import { unaryHandler } from "../src/coordinator/service/handler.js";
import type { LeaderForwarder } from "../src/member/leader-forwarder.js";
import { NotLeaderError } from "../src/raft/errors.js";
import { LEADER_HINT_HEADER } from "../src/wire/headers.js";
import { loadProto, lookup } from "../src/wire/proto.js";

const NodeAgent = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.NodeAgent");
const LEADER = "127.0.0.1:7002";
let server: grpc.Server | undefined;
let client: grpc.Client | undefined;

afterEach(() => {
  client?.close();
  server?.forceShutdown();
});

/** A follower whose every beat needs the leader; `forward` is the test's. */
async function follower(slots: BeatForwardSlots, forward: () => Promise<unknown>): Promise<(req: Record<string, unknown>) => Promise<{ err: grpc.ServiceError | null; hint: unknown }>> {
  const forwarder = {
    forward,
    leaderHint: () => {
      const md = new grpc.Metadata();
      md.set(LEADER_HINT_HEADER, LEADER);
      return md;
    },
  } as unknown as LeaderForwarder;
  server = new grpc.Server();
  server.addService(NodeAgent.service, { Heartbeat: unaryHandler(forwarder, "Heartbeat", () => Promise.reject(new NotLeaderError("n2", LEADER)), slots) });
  const port = await new Promise<number>((resolve, reject) => server!.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  client = new NodeAgent(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const heartbeat = (client as unknown as Record<string, (...a: unknown[]) => grpc.ClientUnaryCall>).Heartbeat!.bind(client);
  return (req) =>
    new Promise((resolve) => {
      let hint: unknown;
      const call = heartbeat(req, (err: grpc.ServiceError | null) => resolve({ err, hint }));
      call.on("metadata", (md: grpc.Metadata) => (hint = md.get(LEADER_HINT_HEADER)[0]));
    });
}

describe("forward slots on the unary Heartbeat", () => {
  it("answers a beat past the limit UNAVAILABLE at once with the leader's address, and forwards again once a slot is free", async () => {
    const waiting: (() => void)[] = [];
    const slots = new BeatForwardSlots(2);
    const beat = await follower(slots, () => new Promise((resolve) => waiting.push(() => resolve({ lease_ttl_ms: 1500 }))));
    const first = [beat({ node_id: "s1", generation: 1 }), beat({ node_id: "s2", generation: 1 })];
    await new Promise((r) => setTimeout(r, 50));
    expect(waiting).toHaveLength(2);
    const refused = await beat({ node_id: "s3", generation: 1 });
    expect(refused.err?.code).toBe(grpc.status.UNAVAILABLE);
    expect(refused.err?.details).toMatch(/already forwards 2 heartbeats/);
    expect(refused.hint).toBe(LEADER);
    expect(waiting).toHaveLength(2);
    for (const finish of waiting.splice(0)) finish();
    for (const r of await Promise.all(first)) expect(r.err).toBeNull();
    expect(slots.inUse).toBe(0);
    const again = beat({ node_id: "s3", generation: 1 });
    await new Promise((r) => setTimeout(r, 50));
    expect(waiting).toHaveLength(1);
    waiting[0]!();
    expect((await again).err).toBeNull();
  });

  it("gives the slot back when the forward fails", async () => {
    const slots = new BeatForwardSlots(1);
    const beat = await follower(slots, () => Promise.reject(Object.assign(new Error("late"), { code: grpc.status.DEADLINE_EXCEEDED, details: "late" })));
    expect((await beat({ node_id: "s1", generation: 1 })).err?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect((await beat({ node_id: "s1", generation: 1 })).err?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(slots.inUse).toBe(0);
    expect(slots.refused).toBe(0);
  });
});

describe("BeatForwardSlots", () => {
  it("runs nothing past its slots and counts what it refuses; a beat with no leader known needs no slot", async () => {
    const slots = new BeatForwardSlots(1);
    let finish: () => void = () => undefined;
    const first = slots.forward(LEADER, () => new Promise<void>((resolve) => (finish = resolve)));
    expect(first).toBeDefined();
    let ran = false;
    expect(slots.forward(LEADER, async () => void (ran = true))).toBeUndefined();
    expect(ran).toBe(false);
    expect(slots.refused).toBe(1);
    await slots.forward("", async () => void (ran = true));
    expect(ran).toBe(true);
    finish();
    await first;
    expect(slots.inUse).toBe(0);
  });
});
