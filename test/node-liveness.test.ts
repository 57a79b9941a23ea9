/**
 * Liveness follows the node, not a stream (real member processes): a
 * meeting server that heartbeats on time and keeps its own watch stream
 * open stays ALIVE, with its meetings where they are, while other streams
 * under its id and generation open and close on other members around its
 * heartbeats; and one that really goes away is still declared dead.
 */
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadProto, lookup } from "../src/wire/proto.js";
import { MemberCluster, unary } from "./support/member-cluster.js";

const pkg = loadProto("convene.proto");
const NodeAgentClient = lookup<grpc.ServiceClientConstructor>(pkg, "convene.v1.NodeAgent");
const CoordinatorClient = lookup<grpc.ServiceClientConstructor>(pkg, "convene.v1.Coordinator");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

  beforeAll(async () => {
    for (const id of ids) cluster.start(id);
    await cluster.waitForLeader();
    await cluster.waitForAll();
    for (const id of ids) clients.set(id, new NodeAgentClient(cluster.addresses.get(id)!, grpc.credentials.createInsecure()));
    coordinator = new CoordinatorClient(cluster.addresses.get("n1")!, grpc.credentials.createInsecure());
  }, 60_000);

  afterAll(async () => {
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
    const home = clients.get("n1")!;
    const reg = await unary<{ generation: number; heartbeat_interval_ms: number }>(home, "Register", {
      node_id: nodeId,
      address: "127.0.0.1:9301",
      capacity: 10,
      region: "",
      labels: {},
    });
    const gen = reg.generation;
    // The only node: the meeting goes to it.
    const route = await unary<{ node_id: string; epoch: number }>(coordinator, "GetRoute", { meeting_id: "liveness-1", create: true, region: "" });
    expect(route.node_id).toBe(nodeId);
    const main = openWatch(home, nodeId, gen);
    await firstEvent(main);
    const beat = () => unary(home, "Heartbeat", { node_id: nodeId, generation: gen, active_meetings: 1, load: 0 });
    // Each round: a heartbeat, then at once an extra stream on another
    // member opened and cancelled, then silence until the next heartbeat
    // (on time: within the interval). Before streams were counted per
    // node, the cancel alone declared the node dead ~300 ms later.
    for (let round = 0; round < 6; round++) {
      await beat();
      const other = clients.get(ids[1 + (round % 2)]!)!;
      const extra = openWatch(other, nodeId, gen);
      await firstEvent(extra);
      extra.cancel();
      await sleep(Math.floor(reg.heartbeat_interval_ms * 0.9));
      expect(await nodeState(nodeId)).toEqual({ state: "ALIVE", generation: gen });
    }
    const after = await unary<{ node_id: string; epoch: number }>(coordinator, "GetRoute", { meeting_id: "liveness-1", create: false, region: "" });
    expect(after).toMatchObject({ node_id: nodeId, epoch: route.epoch });
    main.cancel();
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
});
