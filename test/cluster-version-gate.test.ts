/**
 * The gate of cluster version 3 with real processes of two releases
 * (`npm run test:ops`; CONVENE_OPS_E2E=1): two members of this release and
 * one of the release of cluster version 2 (main before issue 19's
 * additions, built by test/support/release-build.ts). The group runs at
 * cluster version 2, so the leader refuses what version 3 adds
 * (MoveMeeting, Rebalance, UndrainNode, DrainNode with a deadline, GetRoute
 * with a preferred node or excluded labels, Register with limits) with
 * FAILED_PRECONDITION naming the version, and nothing changes; WatchEvents,
 * derived by each member of this release as it applies the log, answers.
 * Once the third member runs this release too, the leader raises the
 * version to 3 and a planned move works.
 */
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NEWEST_CLUSTER_VERSION } from "../src/coordinator/formats.js";
import { NodeAgent } from "../src/node-agent/index.js";
import { EVENT, TestHost, type WireEvent, runConvene } from "./support/app-cluster.js";
import { coordinatorClient } from "./support/coordinator-load.js";
import { MemberCluster, buildOnce, unary } from "./support/member-cluster.js";
import { type ReleaseBuild, buildRelease } from "./support/release-build.js";
import { loadProto, lookup } from "../src/wire/proto.js";

/** main at the merge of operations: the release of cluster version 2, the one an upgrade to cluster version 3 starts from. */
const CLUSTER_VERSION_2_RELEASE = process.env.CONVENE_CLUSTER_VERSION_2_RELEASE ?? "ebef576f64abd347cf029907b9e102f871c76cea";
const IDS = ["n1", "n2", "n3"];
const FAILED_PRECONDITION = 9;
const NodeAgentClient = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.NodeAgent");

interface Status {
  cluster_version?: number;
}

describe.skipIf(!process.env.CONVENE_OPS_E2E)("cluster version 3 gates planned moves, drains with a deadline and load", () => {
  let v2: ReleaseBuild;
  let cluster: MemberCluster | undefined;
  const clients: grpc.Client[] = [];
  const agents: NodeAgent[] = [];

  beforeAll(() => {
    v2 = buildRelease(CLUSTER_VERSION_2_RELEASE);
    buildOnce();
  }, 600_000);

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop().catch(() => undefined)));
    for (const c of clients) c.close();
    await cluster?.close();
  });

  it("at cluster version 2 the leader refuses them and nothing changes; raised to 3 once every member runs this release, they work", async () => {
    cluster = new MemberCluster(IDS, undefined, { app: "coordinator", compiled: true });
    const c = cluster;
    c.start("n1");
    c.start("n2");
    c.start("n3", { cli: v2.cli, cwd: v2.dir });
    await c.waitForLeader(30_000);
    await c.waitForAll(30_000);
    const versions = async (): Promise<number[]> => Promise.all(IDS.map(async (id) => ((await c.status(id)) as unknown as Status).cluster_version ?? 0));
    await expect.poll(versions, { timeout: 20_000, interval: 250 }).toEqual([2, 2, 2]);
    // A member of this release leads, as the README's upgrade procedure has
    // it: a leader of the previous release does not know the new calls at all.
    const leader = await c.waitForLeader(30_000);
    if (leader === "n3") {
      await unary(c.admin("n3"), "TransferLeadership", { id: "n1", address: "" }, 10_000);
      await expect.poll(async () => (await c.status("n1")).role, { timeout: 10_000 }).toBe("leader");
    }
    const addresses = IDS.map((id) => c.addresses.get(id)!);
    const base = Number(addresses[0]!.split(":")[1]);

    const hosts = [new TestHost(), new TestHost()];
    for (const [i, nodeId] of ["a", "b"].entries()) {
      const agent = new NodeAgent({ coordinators: addresses, nodeId, address: `127.0.0.1:${base + 5 + i}`, capacity: 10, checkpointIntervalMs: 200, rpcTimeoutMs: 5_000, ...hosts[i]!.callbacks() });
      agent.on("error", () => undefined);
      agents.push(agent);
      await agent.start();
    }
    const client = coordinatorClient(addresses[0]!);
    clients.push(client);
    const call = <T>(method: string, req: object): Promise<T> => unary<T>(client, method, req, 10_000);
    const route = await call<{ node_id: string; epoch: number }>("GetRoute", { meeting_id: "room", create: true });
    const owner = route.node_id;
    const other = owner === "a" ? "b" : "a";
    await expect.poll(() => hosts[owner === "a" ? 0 : 1]!.write("room", "hello"), { timeout: 10_000 }).toBe(true);

    const snapshot = async () => ({
      nodes: (await call<{ nodes: { node_id: string; state: number; generation: number; drain_deadline_ms: number }[] }>("ListNodes", {})).nodes.map((n) => [n.node_id, n.state, n.generation, n.drain_deadline_ms]),
      meetings: (await call<{ meetings: { meeting_id: string; node_id: string; epoch: number }[] }>("ListMeetings", {})).meetings.map((m) => [m.meeting_id, m.node_id, m.epoch]),
    });
    const before = await snapshot();
    const refused: [string, object][] = [
      ["MoveMeeting", { meeting_id: "room", to_node_id: other }],
      ["Rebalance", {}],
      ["Rebalance", { dry_run: true }],
      ["UndrainNode", { node_id: owner }],
      ["DrainNode", { node_id: owner, deadline_ms: 5_000 }],
      ["GetRoute", { meeting_id: "room-2", create: true, preferred_node_id: other }],
      ["GetRoute", { meeting_id: "room-3", create: true, excluded_labels: { zone: "x" } }],
    ];
    for (const [method, req] of refused) {
      await expect(call(method, req), method).rejects.toMatchObject({ code: FAILED_PRECONDITION, details: expect.stringContaining("needs cluster version 3, and the cluster runs at cluster version 2") });
    }
    const agentClient = new NodeAgentClient(addresses[1]!, grpc.credentials.createInsecure());
    clients.push(agentClient);
    await expect(
      unary(agentClient, "Register", { node_id: "c", address: `127.0.0.1:${base + 7}`, capacity: 5, region: "", labels: {}, limits: { cpu: 0.8 } }, 10_000),
    ).rejects.toMatchObject({ code: FAILED_PRECONDITION, details: expect.stringContaining("limits declared at register needs cluster version 3") });
    // The agent library waits for the version instead of failing its start.
    // It talks to the members of this release only: n3, of the previous
    // release, decodes a Register without the limits field it does not
    // know before forwarding it, and the leader then registers c without
    // limits (README: Rolling upgrades).
    const limited = new NodeAgent({ coordinators: addresses.slice(0, 2), nodeId: "c", address: `127.0.0.1:${base + 7}`, capacity: 5, limits: { cpu: 0.8 }, rpcTimeoutMs: 5_000, ...new TestHost().callbacks() });
    limited.on("error", () => undefined);
    agents.push(limited);
    let limitedStarted: "pending" | "started" | Error = "pending";
    const limitedStart = limited.start().then(
      () => (limitedStarted = "started"),
      (err: Error) => (limitedStarted = err),
    );
    const move = await runConvene(["move", "room", "--coordinators", addresses.join(",")]);
    expect(move.code).not.toBe(0);
    expect(move.stderr).toContain("needs cluster version 3");
    expect(await snapshot()).toEqual(before);
    expect(limitedStarted).toBe("pending");

    // Events are each member's own (derived as it applies): a member of this release streams them at cluster version 2.
    const stream = (client as unknown as { WatchEvents(r: unknown): grpc.ClientReadableStream<{ events: WireEvent[] }> }).WatchEvents({ from_index: 0 });
    const events: WireEvent[] = [];
    stream.on("data", (b: { events: WireEvent[] }) => events.push(...b.events));
    stream.on("error", () => undefined);
    await expect.poll(() => events.some((e) => e.type === EVENT.MEETING_CREATED && e.meeting_id === "room"), { timeout: 10_000 }).toBe(true);
    stream.cancel();

    // n3 runs this release too: the leader raises the version, and a planned move keeps the last write.
    expect(await c.terminate("n3")).toBe(0);
    c.start("n3");
    await c.waitForAll(30_000);
    await expect.poll(versions, { timeout: 20_000, interval: 250 }).toEqual([NEWEST_CLUSTER_VERSION, NEWEST_CLUSTER_VERSION, NEWEST_CLUSTER_VERSION]);
    await limitedStart;
    expect(limitedStarted).toBe("started");
    expect((await call<{ nodes: { node_id: string }[] }>("ListNodes", {})).nodes.map((n) => n.node_id)).toContain("c");
    expect(hosts[owner === "a" ? 0 : 1]!.write("room", "just before the move")).toBe(true);
    const started = await call<{ started: boolean; to_node_id: string }>("MoveMeeting", { meeting_id: "room", to_node_id: other });
    expect(started).toMatchObject({ started: true, to_node_id: other });
    await expect.poll(async () => (await call<{ node_id: string }>("GetRoute", { meeting_id: "room" })).node_id, { timeout: 20_000 }).toBe(other);
    expect(hosts[other === "a" ? 0 : 1]!.writes.get("room")).toEqual(["hello", "just before the move"]);
    await call("DrainNode", { node_id: owner, deadline_ms: 60_000 });
    await call("UndrainNode", { node_id: owner });
  }, 600_000);
});
