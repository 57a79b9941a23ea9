/**
 * Node agents (the real library, in this process) against three real
 * coordinator members: killing the coordinator's leader during steady
 * heartbeats declares no meeting server dead, and the agents follow the
 * new leader without their hosts noticing.
 */
import * as grpc from "@grpc/grpc-js";
import { afterAll, describe, expect, it } from "vitest";
import { loadProto, lookup } from "../src/wire/proto.js";
import { NodeAgent } from "../src/node-agent/index.js";
import { MemberCluster, unary } from "./support/member-cluster.js";

const CoordinatorClient = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.Coordinator");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("coordinator leader killed during steady heartbeats", () => {
  const ids = ["n1", "n2", "n3"];
  const cluster = new MemberCluster(ids, undefined, { app: "coordinator" });
  const agents: NodeAgent[] = [];
  const revoked: string[] = [];

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop({ deregister: false }).catch(() => undefined)));
    await cluster.close();
  });

  it("no node is declared dead, agents keep their meetings and follow the new leader", async () => {
    for (const id of ids) cluster.start(id);
    const leader = await cluster.waitForLeader();
    await cluster.waitForAll();
    const coordinators = ids.map((id) => cluster.addresses.get(id)!);
    for (let i = 0; i < 3; i++) {
      const held = new Map<string, number>();
      const agent = new NodeAgent({
        coordinators,
        nodeId: `m${i}`,
        address: `127.0.0.1:${9500 + i}`,
        capacity: 100,
        checkpointIntervalMs: 300,
        onAssigned: (meetingId) => void held.set(meetingId, 1),
        onRevoked: (meetingId) => {
          held.delete(meetingId);
          revoked.push(`m${i}:${meetingId}`);
        },
        getState: (meetingId) => (held.has(meetingId) ? Buffer.from(`s-${meetingId}`) : undefined),
      });
      agent.on("error", () => undefined);
      await agent.start();
      agents.push(agent);
    }
    const follower = ids.find((id) => id !== leader)!;
    const client = new CoordinatorClient(cluster.addresses.get(follower)!, grpc.credentials.createInsecure());
    for (let i = 0; i < 30; i++) await unary(client, "GetRoute", { meeting_id: `room-${i}`, create: true, region: "" }, 5000);
    await sleep(1000);
    // Whichever member each agent started on, the leader's hint on a forwarded heartbeat moved it there.
    for (const a of agents) expect(a.coordinatorAddress).toBe(cluster.addresses.get(leader));
    const generations = agents.map((a) => a.generation);
    const before = agents.map((a) => [...a.meetings().keys()].sort());
    expect(before.flat().length).toBe(30);

    await cluster.kill9(leader);
    const newLeader = await cluster.waitForLeader(10_000);
    expect(newLeader).not.toBe(leader);
    // Several leases pass under the new leader.
    await sleep(3500);

    const survivor = new CoordinatorClient(cluster.addresses.get(newLeader)!, grpc.credentials.createInsecure());
    const nodes = await unary<{ nodes: { node_id: string; state: number; generation: number }[] }>(survivor, "ListNodes", {}, 5000);
    for (const n of nodes.nodes) expect(n.state, `${n.node_id} state`).toBe(1); // ALIVE
    // Nobody re-registered, nothing moved, nothing was revoked.
    expect(agents.map((a) => a.generation)).toEqual(generations);
    expect(agents.map((a) => [...a.meetings().keys()].sort())).toEqual(before);
    expect(revoked).toEqual([]);
    for (const a of agents) expect(a.coordinatorAddress).toBe(cluster.addresses.get(newLeader));
    const meetings = await unary<{ meetings: { epoch: number }[] }>(survivor, "ListMeetings", { node_id: "" }, 5000);
    expect(meetings.meetings.every((m) => m.epoch === 1)).toBe(true);
    // Checkpoints still flow through the new leader.
    const cp = await unary<{ state: Buffer }>(survivor, "GetCheckpoint", { meeting_id: "room-0" }, 5000);
    expect(Buffer.from(cp.state).toString()).toBe("s-room-0");
    client.close();
    survivor.close();
  }, 90_000);
});
