/**
 * Liveness follows the node, not a stream (real member processes): a
 * meeting server that heartbeats on time and keeps its own watch stream
 * open stays ALIVE, with its meetings where they are, while other streams
 * under its id and generation open and close on other members around its
 * heartbeats; and one that really goes away is still declared dead.
 *
 * The steady node heartbeats from a child process (FakeMeetingNodes), so a
 * stall of this process cannot make it late; and "it stays alive" is
 * checked once the leader has judged a canary whose stream closed at the
 * same moment on the same member, so a slow leader cannot make the check
 * pass before it was made.
 */
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadProto, lookup } from "../src/wire/proto.js";
import { FakeMeetingNodes } from "./support/fake-meeting-node.js";
import { MemberCluster, unary } from "./support/member-cluster.js";

const pkg = loadProto("convene.proto");
const NodeAgentClient = lookup<grpc.ServiceClientConstructor>(pkg, "convene.v1.NodeAgent");
const CoordinatorClient = lookup<grpc.ServiceClientConstructor>(pkg, "convene.v1.Coordinator");
const MemberAdmin = lookup<grpc.ServiceClientConstructor>(loadProto("member.proto"), "convene.member.v1.MemberAdmin");

type Watch = grpc.ClientReadableStream<{ type: number; meeting_id: string; epoch: number }>;

function openWatch(client: grpc.Client, nodeId: string, generation: number): Watch {
  const watch = (client as unknown as { WatchAssignments(req: unknown): Watch }).WatchAssignments({ node_id: nodeId, generation });
  watch.on("error", () => undefined);
  return watch;
}

/** Resolves once the stream has delivered its first event (the member counts it as open by then): the node must hold a meeting. */
function firstEvent(watch: Watch): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the watch stream sent nothing within 10 s")), 10_000);
    watch.once("data", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

describe("node liveness under extra streams", () => {
  const ids = ["n1", "n2", "n3"];
  const cluster = new MemberCluster(ids, undefined, { app: "coordinator" });
  const clients = new Map<string, grpc.Client>();
  let coordinator: grpc.Client;
  let fakes: FakeMeetingNodes | undefined;

  beforeEach(({ onTestFailed }) => {
    onTestFailed(() => {
      const note = fakes?.starvation();
      if (note) console.log(`The fake meeting server was not punctual; this failure may say more about the machine than about the coordinator:\n${note}`);
    });
  });

  beforeAll(async () => {
    for (const id of ids) cluster.start(id);
    await cluster.waitForLeader();
    await cluster.waitForAll();
    for (const id of ids) clients.set(id, new NodeAgentClient(cluster.addresses.get(id)!, grpc.credentials.createInsecure()));
    coordinator = new CoordinatorClient(cluster.addresses.get("n1")!, grpc.credentials.createInsecure());
  }, 60_000);

  afterAll(async () => {
    fakes?.kill();
    for (const c of clients.values()) c.close();
    coordinator?.close();
    await cluster.close();
  });

  async function nodeState(nodeId: string): Promise<{ state: string; generation: number }> {
    const r = await unary<{ nodes: { node_id: string; state: string | number; generation: number }[] }>(coordinator, "ListNodes", {});
    const n = r.nodes.find((x) => x.node_id === nodeId)!;
    const states: Record<string, string> = { 1: "ALIVE", 2: "SUSPECT", 3: "DEAD", 4: "DRAINING" };
    return { state: states[String(n.state)] ?? String(n.state), generation: n.generation };
  }

  it("a heartbeating node with its own stream open survives other streams of its id closing, on every member", async () => {
    const nodeId = "steady";
    // Heartbeats exactly every interval asked (the slowest node still on
    // time), with its own stream open on n1.
    fakes = await FakeMeetingNodes.start([
      { nodeId, coordinator: cluster.addresses.get("n1")!, port: 9301, capacity: 10, alive: true, exactInterval: true, announceBeats: true },
    ]);
    const steady = fakes;
    const gen = steady.generations.get(nodeId)!;
    // The only node: the meeting goes to it.
    const route = await unary<{ node_id: string; epoch: number }>(coordinator, "GetRoute", { meeting_id: "liveness-1", create: true, region: "" });
    expect(route.node_id).toBe(nodeId);
    await expect.poll(() => steady.held(nodeId).has("liveness-1"), { timeout: 10_000 }).toBe(true);
    // Each round, on another member: an extra stream of the node and the
    // stream of a canary (a node that registered and says nothing more),
    // both cancelled just after one of the node's heartbeats, so the node
    // is then silent for a whole interval. Before streams were counted per
    // node, the cancel alone declared the node dead ~300 ms later. The
    // canary, whose stream was its last, is declared dead once the leader
    // has judged both closes: by then a node wrongly judged is suspect too.
    for (let round = 0; round < 6; round++) {
      const member = clients.get(ids[1 + (round % 2)]!)!;
      const canary = `canary-${round}`;
      const reg = await unary<{ generation: number }>(member, "Register", { node_id: canary, address: `127.0.0.1:${9310 + round}`, capacity: 10, region: "", labels: {} });
      // The least loaded node: the meeting goes to it, so its stream delivers an event.
      const placed = await unary<{ node_id: string }>(coordinator, "GetRoute", { meeting_id: `liveness-canary-${round}`, create: true, region: "" });
      expect(placed.node_id).toBe(canary);
      const extra = openWatch(member, nodeId, gen);
      const canaryStream = openWatch(member, canary, reg.generation);
      await Promise.all([firstEvent(extra), firstEvent(canaryStream)]);
      await steady.nextBeat(nodeId);
      extra.cancel();
      canaryStream.cancel();
      await expect.poll(async () => (await nodeState(canary)).state, { timeout: 10_000, interval: 50 }).toBe("DEAD");
      expect(await nodeState(nodeId), steady.starvation()).toEqual({ state: "ALIVE", generation: gen });
    }
    // Not even suspected for a moment meanwhile.
    const leader = await cluster.waitForLeader();
    const audit = await unary<{ entries: { kind: string; summary: string }[] }>(cluster.admin(leader), "AuditLog", { limit: 0 }, 5000);
    expect(audit.entries.filter((e) => e.kind === "setLiveness" && e.summary.startsWith(`${nodeId} `)).map((e) => e.summary), steady.starvation()).toEqual([]);
    const after = await unary<{ node_id: string; epoch: number }>(coordinator, "GetRoute", { meeting_id: "liveness-1", create: false, region: "" });
    expect(after).toMatchObject({ node_id: nodeId, epoch: route.epoch });
  });

  it("a node whose last stream closes and whose heartbeats stop is declared dead within a second", async () => {
    const nodeId = "gone";
    const home = clients.get("n2")!;
    const reg = await unary<{ generation: number }>(home, "Register", { node_id: nodeId, address: "127.0.0.1:9302", capacity: 10, region: "", labels: {} });
    // The least loaded node: the meeting goes to it.
    const route = await unary<{ node_id: string }>(coordinator, "GetRoute", { meeting_id: "liveness-2", create: true, region: "" });
    expect(route.node_id).toBe(nodeId);
    const main = openWatch(home, nodeId, reg.generation);
    await firstEvent(main);
    await unary(home, "Heartbeat", { node_id: nodeId, generation: reg.generation, active_meetings: 0, load: 0 });
    const started = Date.now();
    main.cancel();
    await expect.poll(async () => (await nodeState(nodeId)).state, { timeout: 5_000, interval: 50 }).toBe("DEAD");
    // Grace (300 ms) or a missed heartbeat (600 ms after the last), plus proposal and polling.
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("a member whose stream report went missing is asked for its whole table, by the leader and through a follower", async () => {
    const leader = await cluster.waitForLeader();
    const follower = ids.find((id) => id !== leader)!;
    const admin = (id: string) => new MemberAdmin(cluster.addresses.get(id)!, grpc.credentials.createInsecure());
    const [atLeader, atFollower] = [admin(leader), admin(follower)];
    const report = async (client: grpc.Client, sequence: number, resync = false): Promise<boolean> => {
      const counts = [{ node_id: "reported", generation: 1, open_streams: 1, sequence }];
      return (await unary<{ resync: boolean }>(client, "NodeConnection", { member_id: "reporter", resync, sequence, counts })).resync;
    };
    try {
      expect(await report(atLeader, 10)).toBe(true); // none of its reports reached this leader yet
      expect(await report(atLeader, 11, true)).toBe(false);
      expect(await report(atLeader, 12)).toBe(false);
      expect(await report(atLeader, 14)).toBe(true); // 13 is missing
      expect(await report(atLeader, 15)).toBe(true); // still missing until a whole table comes
      expect(await report(atLeader, 16, true)).toBe(false);
      expect(await report(atFollower, 17)).toBe(false);
      expect(await report(atFollower, 19)).toBe(true);
    } finally {
      atLeader.close();
      atFollower.close();
    }
  });
});
