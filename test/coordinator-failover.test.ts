/**
 * Node agents (the real library) against three real coordinator members:
 * killing the coordinator's leader during steady heartbeats declares no
 * meeting server dead, and the agents follow the new leader without their
 * hosts noticing. The agents run in a child process (NodeAgentsProcess):
 * a stall of this process must not make them late for their heartbeats.
 */
import * as grpc from "@grpc/grpc-js";
import { afterAll, describe, expect, it } from "vitest";
import { loadProto, lookup } from "../src/wire/proto.js";
import { MemberCluster, unary } from "./support/member-cluster.js";
import { type AgentReport, NodeAgentsProcess } from "./support/node-agents-process.js";

const CoordinatorClient = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.Coordinator");
/** The coordinator's lease (coordinator-app.ts): a node silent this long is dead. */
const LEASE_MS = 1500;

describe("coordinator leader killed during steady heartbeats", () => {
  const ids = ["n1", "n2", "n3"];
  const cluster = new MemberCluster(ids, undefined, { app: "coordinator" });
  let agents: NodeAgentsProcess | undefined;

  afterAll(async () => {
    agents?.kill();
    await cluster.close();
  });

  it("no node is declared dead, agents keep their meetings and follow the new leader", async () => {
    for (const id of ids) cluster.start(id);
    const leader = await cluster.waitForLeader();
    await cluster.waitForAll();
    const coordinators = ids.map((id) => cluster.addresses.get(id)!);
    agents = await NodeAgentsProcess.start(
      [0, 1, 2].map((i) => ({ nodeId: `m${i}`, coordinators, address: `127.0.0.1:${9500 + i}`, capacity: 100, checkpointIntervalMs: 300 })),
    );
    const report = () => agents!.report();
    const why = () => agents!.starvation();
    const follower = ids.find((id) => id !== leader)!;
    const client = new CoordinatorClient(cluster.addresses.get(follower)!, grpc.credentials.createInsecure());
    for (let i = 0; i < 30; i++) await unary(client, "GetRoute", { meeting_id: `room-${i}`, create: true, region: "" }, 5000);
    // Whichever member each agent started on, the leader's hint on a forwarded heartbeat moves it there.
    const settled = (r: AgentReport[]) => r.every((a) => a.coordinatorAddress === cluster.addresses.get(leader)) && r.flatMap((a) => a.meetings).length === 30;
    await expect.poll(async () => settled(await report()), { timeout: 15_000 }).toBe(true);
    const before = await report();

    await cluster.kill9(leader);
    const newLeader = await cluster.waitForLeader(10_000);
    const electedAt = Date.now();
    expect(newLeader).not.toBe(leader);
    // Several leases pass under the new leader: it judges nobody in its
    // first lease, then by heartbeats. A loaded machine may stall it, so
    // time alone proves nothing: wait until it has answered every agent's
    // heartbeats for three leases after its election (it is judging by
    // then, and was running), and only then look for deaths.
    const judgedLongEnough = (r: AgentReport[]) => r.every((a) => a.heartbeatsAnsweredAtMs.some((t) => t >= electedAt + 3 * LEASE_MS));
    await expect.poll(async () => judgedLongEnough(await report()), { timeout: 30_000 }).toBe(true);

    const survivor = new CoordinatorClient(cluster.addresses.get(newLeader)!, grpc.credentials.createInsecure());
    const nodes = await unary<{ nodes: { node_id: string; state: number; generation: number }[] }>(survivor, "ListNodes", {}, 5000);
    for (const n of nodes.nodes) expect(n.state, `${n.node_id} state ${why()}`).toBe(1); // ALIVE
    // Nobody re-registered, nothing moved, nothing was revoked.
    const after = await report();
    expect(after.map((a) => a.generation), why()).toEqual(before.map((a) => a.generation));
    expect(after.map((a) => a.meetings)).toEqual(before.map((a) => a.meetings));
    expect(after.flatMap((a) => a.revoked)).toEqual([]);
    await expect.poll(async () => (await report()).every((a) => a.coordinatorAddress === cluster.addresses.get(newLeader)), { timeout: 10_000 }).toBe(true);
    const meetings = await unary<{ meetings: { epoch: number }[] }>(survivor, "ListMeetings", { node_id: "" }, 5000);
    expect(meetings.meetings.every((m) => m.epoch === 1)).toBe(true);
    // Checkpoints still flow through the new leader.
    const cp = await unary<{ state: Buffer }>(survivor, "GetCheckpoint", { meeting_id: "room-0" }, 5000);
    expect(Buffer.from(cp.state).toString()).toBe("s-room-0");
    client.close();
    survivor.close();
  }, 120_000);
});
