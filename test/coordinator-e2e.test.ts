/**
 * The coordinator end to end: three real member processes on 127.0.0.1,
 * meeting servers played by raw gRPC clients (register, heartbeat, watch,
 * checkpoint) exactly as API.md has them call. The servers heartbeat from
 * a child process (FakeMeetingNodes): a stall of this process must not
 * make them late, or the coordinator would rightly declare them dead.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadProto, lookup } from "../src/wire/proto.js";
import { FakeMeetingNodes } from "./support/fake-meeting-node.js";
import { MemberCluster, unary } from "./support/member-cluster.js";

const pkg = loadProto("convene.proto");
const NodeAgentClient = lookup<grpc.ServiceClientConstructor>(pkg, "convene.v1.NodeAgent");
const CoordinatorClient = lookup<grpc.ServiceClientConstructor>(pkg, "convene.v1.Coordinator");
const require = createRequire(import.meta.url);
describe("coordinator over gRPC", () => {
  const cluster = new MemberCluster(["n1", "n2", "n3"], undefined, { app: "coordinator" });
  let coordinator: grpc.Client;
  const nodeIds = ["m1", "m2", "m3"];
  /** m1, m2 and m3, registered with n1, n2 and n3. */
  let fakes: FakeMeetingNodes;
  /** A NodeAgent client on each server's own member, for the calls the test makes in its name (checkpoints, bad input). */
  const agentClients = new Map<string, grpc.Client>();
  /** A server as the test sees it: what it holds and was told, and a client to call in its name. */
  const server = (nodeId: string) => ({
    nodeId,
    generation: fakes.generations.get(nodeId)!,
    held: () => fakes.held(nodeId),
    events: fakes.events(nodeId),
    client: agentClients.get(nodeId)!,
  });

  beforeEach(({ onTestFailed }) => {
    onTestFailed(() => {
      const note = fakes?.starvation();
      if (note) console.log(`The fake meeting servers were not punctual; this failure may say more about the machine than about the coordinator:\n${note}`);
    });
  });

  beforeAll(async () => {
    for (const id of ["n1", "n2", "n3"]) cluster.start(id);
    const leader = await cluster.waitForLeader();
    await cluster.waitForAll();
    // Talk to a follower on purpose: it must forward what needs the leader.
    const follower = ["n1", "n2", "n3"].find((id) => id !== leader)!;
    coordinator = new CoordinatorClient(cluster.addresses.get(follower)!, grpc.credentials.createInsecure());
    const members = nodeIds.map((_, i) => cluster.addresses.get(["n1", "n2", "n3"][i]!)!);
    fakes = await FakeMeetingNodes.start(nodeIds.map((nodeId, i) => ({ nodeId, coordinator: members[i]!, port: 9100 + i, capacity: 200, alive: true })));
    nodeIds.forEach((nodeId, i) => agentClients.set(nodeId, new NodeAgentClient(members[i]!, grpc.credentials.createInsecure())));
  }, 90_000);

  afterAll(async () => {
    fakes?.kill();
    for (const c of agentClients.values()) c.close();
    coordinator?.close();
    await cluster.close();
  });

  it("places 300 meetings balanced, sticky, epoch 1", async () => {
    const routes = await Promise.all(
      Array.from({ length: 300 }, (_, i) => unary<{ node_id: string; epoch: number; created: boolean }>(coordinator, "GetRoute", { meeting_id: `room-${i}`, create: true, region: "" }, 10_000)),
    );
    const counts = new Map<string, number>();
    for (const r of routes) counts.set(r.node_id, (counts.get(r.node_id) ?? 0) + 1);
    expect([...counts.keys()].sort()).toEqual(["m1", "m2", "m3"]);
    for (const c of counts.values()) expect(Math.abs(c - 100)).toBeLessThanOrEqual(3);
    expect(routes.every((r) => r.epoch === 1 && r.created)).toBe(true);
    const again = await unary<{ node_id: string; epoch: number; created: boolean }>(coordinator, "GetRoute", { meeting_id: "room-7", create: true, region: "" });
    expect(again).toMatchObject({ node_id: routes[7]!.node_id, epoch: 1, created: false });
    // Each server's watch stream announced its meetings.
    for (const nodeId of nodeIds) await expect.poll(() => fakes.held(nodeId).size, { timeout: 10_000 }).toBe(counts.get(nodeId));
  }, 60_000);

  it("a dead meeting server's meetings move with their checkpoints; its late writes are fenced", async () => {
    const victim = server("m1");
    const mine = [...victim.held()].slice(0, 5);
    for (const [meetingId, epoch] of mine) {
      const r = await unary<{ sequence: number }>(victim.client, "SaveCheckpoint", {
        node_id: victim.nodeId, generation: victim.generation, meeting_id: meetingId, epoch, sequence: 3, state: Buffer.from(`state of ${meetingId}`),
      });
      expect(r.sequence).toBe(3);
    }
    const count = victim.held().size;
    const killedAt = Date.now();
    await fakes.die(victim.nodeId);
    // Every one of its meetings is routable to a live node, epoch 2.
    const movedOff = async () => {
      const list = await unary<{ meetings: { meeting_id: string; node_id: string; epoch: number }[] }>(coordinator, "ListMeetings", { node_id: "" });
      return list.meetings.some((m) => m.node_id === victim.nodeId) ? -1 : list.meetings.filter((m) => m.epoch === 2).length;
    };
    await expect.poll(movedOff, { timeout: 10_000, interval: 50 }).toBe(count);
    expect(Date.now() - killedAt).toBeLessThan(5_000);
    // The new owners got ASSIGNED with the checkpoint, on their watch streams.
    const others = ["m2", "m3"].map(server);
    for (const [meetingId] of mine) {
      await expect.poll(() => others.some((s) => s.held().get(meetingId) === 2), { timeout: 10_000 }).toBe(true);
      const owner = others.find((s) => s.held().get(meetingId) === 2)!;
      const e = owner.events.find((ev) => ev.meeting_id === meetingId && ev.epoch === 2 && ev.type === 1)!;
      expect(Buffer.from(e.checkpoint!.state).toString()).toBe(`state of ${meetingId}`);
      expect(e.checkpoint!.sequence).toBe(3);
    }
    // The zombie's late save is refused and changes nothing.
    const [meetingId, epoch] = mine[0]!;
    await expect(
      unary(victim.client, "SaveCheckpoint", { node_id: victim.nodeId, generation: victim.generation, meeting_id: meetingId, epoch, sequence: 4, state: Buffer.from("zombie") }),
    ).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION });
    const cp = await unary<{ state: Buffer; sequence: number }>(coordinator, "GetCheckpoint", { meeting_id: meetingId });
    expect(Buffer.from(cp.state).toString()).toBe(`state of ${meetingId}`);
    const nodes = await unary<{ nodes: { node_id: string; state: number }[] }>(coordinator, "ListNodes", {});
    expect(nodes.nodes.find((n) => n.node_id === victim.nodeId)!.state).toBe(3); // DEAD
  }, 60_000);

  it("bad input gets the right status and a message naming the field", async () => {
    await expect(unary(coordinator, "GetRoute", { meeting_id: "a b", create: true })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringContaining("meeting_id"),
    });
    await expect(unary(coordinator, "GetRoute", { meeting_id: "never-created", create: false })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    const live = server("m2");
    await expect(
      unary(live.client, "Register", { node_id: "x/y", address: "127.0.0.1:1", capacity: 1 }),
    ).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringContaining("node_id") });
    await expect(
      unary(live.client, "Register", { node_id: "ok", address: "127.0.0.1:1", capacity: 0 }),
    ).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringContaining("capacity") });
    const [meetingId, epoch] = [...live.held()][0]!;
    await expect(
      unary(live.client, "SaveCheckpoint", { node_id: live.nodeId, generation: live.generation, meeting_id: meetingId, epoch, sequence: 1, state: Buffer.alloc(300 * 1024) }),
    ).rejects.toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED });
    await expect(unary(live.client, "Heartbeat", { node_id: "unknown-node", generation: 1 })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    await expect(unary(live.client, "Heartbeat", { node_id: live.nodeId, generation: live.generation + 5 })).rejects.toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
    });
  }, 30_000);

  it("answers the standard gRPC health check and server reflection", async () => {
    const healthDef = protoLoader.loadSync(healthProtoPath, { keepCase: true, enums: String });
    const Health = (grpc.loadPackageDefinition(healthDef) as any).grpc.health.v1.Health as grpc.ServiceClientConstructor;
    const health = new Health(cluster.addresses.get("n2")!, grpc.credentials.createInsecure());
    const r = await unary<{ status: string }>(health, "Check", { service: "convene.v1.Coordinator" });
    expect(r.status).toBe("SERVING");
    health.close();
    const reflectionDef = protoLoader.loadSync("grpc/reflection/v1alpha/reflection.proto", {
      keepCase: true,
      includeDirs: [join(dirname(require.resolve("@grpc/reflection/package.json")), "build", "proto")],
    });
    const Reflection = (grpc.loadPackageDefinition(reflectionDef) as any).grpc.reflection.v1alpha.ServerReflection as grpc.ServiceClientConstructor;
    const reflection = new Reflection(cluster.addresses.get("n1")!, grpc.credentials.createInsecure());
    const stream = (reflection as any).ServerReflectionInfo() as grpc.ClientDuplexStream<unknown, { list_services_response?: { service: { name: string }[] } }>;
    const names = await new Promise<string[]>((resolve, reject) => {
      stream.on("data", (res) => {
        resolve((res.list_services_response?.service ?? []).map((x: { name: string }) => x.name));
        stream.end();
      });
      stream.on("error", reject);
      stream.write({ list_services: "" });
    });
    expect(names).toEqual(expect.arrayContaining(["convene.v1.NodeAgent", "convene.v1.Coordinator"]));
    reflection.close();
  });

  it("ClusterStatus (asked of a follower) reports every member's own indexes and reachability", async () => {
    type Status = { leader_id: string; term: number; members: { id: string; role: number; commit_index: number; applied_index: number; reachable: boolean }[] };
    const s = await unary<Status>(coordinator, "ClusterStatus", {});
    expect(s.members.map((m) => m.id)).toEqual(["n1", "n2", "n3"]);
    expect(s.members.filter((m) => m.role === 1).map((m) => m.id)).toEqual([s.leader_id]);
    expect(s.term).toBeGreaterThan(0);
    for (const m of s.members) {
      expect(m.reachable).toBe(true);
      expect(m.commit_index).toBeGreaterThan(300); // the meetings of the first test
      expect(m.applied_index).toBeGreaterThan(300);
    }
  });

  it("exposes the audit trail of assignments and moves to operators", async () => {
    const log = await unary<{ entries: { index: number; kind: string; ok: boolean; summary: string }[] }>(cluster.admin("n1"), "AuditLog", { limit: 2000 }, 5000);
    const kinds = new Set(log.entries.map((e) => e.kind));
    for (const k of ["register", "createMeeting", "saveCheckpoint", "setLiveness"]) expect(kinds).toContain(k);
    const indexes = log.entries.map((e) => e.index);
    expect([...indexes].sort((a, b) => a - b)).toEqual(indexes);
    expect(log.entries.some((e) => e.kind === "setLiveness" && e.summary.includes("m1"))).toBe(true);
  });

  it("streams route changes to gateways from any member, resumable by revision", async () => {
    const RouteFeed = lookup<grpc.ServiceClientConstructor>(loadProto("routes.proto"), "convene.routes.v1.RouteFeed");
    type Batch = { revision: number; reset: boolean; changes: { meeting_id: string; node_id: string; epoch: number }[] };
    const watch = (address: string, fromRevision: number) => {
      const client = new RouteFeed(address, grpc.credentials.createInsecure());
      const batches: Batch[] = [];
      const stream = (client as unknown as { WatchRoutes(r: unknown): grpc.ClientReadableStream<Batch> }).WatchRoutes({ from_revision: fromRevision });
      stream.on("data", (b: Batch) => batches.push(b));
      stream.on("error", () => undefined);
      return { batches, close: () => (stream.cancel(), client.close()) };
    };
    const until = (check: () => boolean) => expect.poll(check, { timeout: 10_000, interval: 20 }).toBe(true);
    const first = watch(cluster.addresses.get("n2")!, 0);
    await until(() => first.batches.length > 0);
    expect(first.batches[0]!.reset).toBe(true);
    const table = first.batches.flatMap((b) => b.changes);
    expect(table.length).toBeGreaterThanOrEqual(295); // every live meeting of the first test
    const created = await unary<{ node_id: string; epoch: number }>(coordinator, "GetRoute", { meeting_id: "feed-1", create: true, region: "" });
    await until(() => first.batches.some((b) => b.changes.some((c) => c.meeting_id === "feed-1")));
    const change = first.batches.flatMap((b) => b.changes).find((c) => c.meeting_id === "feed-1")!;
    expect(change).toMatchObject({ node_id: created.node_id, epoch: 1 });
    const revision = first.batches.at(-1)!.revision;
    first.close();
    // Resume on another member from that revision: no table, only what came after.
    const resumed = watch(cluster.addresses.get("n3")!, revision);
    await unary(coordinator, "EndMeeting", { meeting_id: "feed-1" });
    await until(() => resumed.batches.length > 0);
    expect(resumed.batches[0]!.reset).toBe(false);
    expect(resumed.batches.every((b) => b.revision > revision)).toBe(true);
    expect(resumed.batches.flatMap((b) => b.changes)).toContainEqual(expect.objectContaining({ meeting_id: "feed-1", node_id: "" }));
    resumed.close();
  });
});
