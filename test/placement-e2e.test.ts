/**
 * Placement by real load (issue 19), end to end: node agents report CPU and
 * participants with their heartbeats and declare limits at Register; the
 * leader writes the figures into the replicated state when they change
 * enough; GetRoute(create) then avoids a node over its limit, prefers the
 * least loaded, honours a preferred node with room and label constraints,
 * and refuses bad constraints naming the field. Through gRPC and the CLI.
 */
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LoadSample } from "../src/node-agent/index.js";
import { loadProto, lookup } from "../src/wire/proto.js";
import { AppCluster, TestHost, sleep, waitFor } from "./support/app-cluster.js";
import { unary } from "./support/member-cluster.js";

interface NodeAnswer {
  node_id: string;
  limits: { cpu: number };
  load: { cpu: number; participants: number; reported_at_ms: number };
}

describe("placement by load", () => {
  const cluster = new AppCluster();
  const figures = new Map<string, LoadSample>([
    ["hot", { cpu: 0.9, participants: 300 }],
    ["warm", { cpu: 0.5, participants: 100 }],
    ["cool", { cpu: 0.1, participants: 10 }],
  ]);

  const nodes = async () => (await cluster.call<{ nodes: NodeAnswer[] }>("ListNodes", {})).nodes;
  const place = async (meetingId: string, extra: Record<string, unknown> = {}) =>
    (await cluster.call<{ node_id: string }>("GetRoute", { meeting_id: meetingId, create: true, ...extra })).node_id;

  beforeAll(async () => {
    await cluster.start();
    await cluster.agent("hot", new TestHost(), { limits: { cpu: 0.85 }, reportLoad: () => figures.get("hot")! });
    await cluster.agent("warm", new TestHost(), { reportLoad: () => figures.get("warm")! });
    await cluster.agent("cool", new TestHost(), { labels: { tier: "trial" }, reportLoad: () => figures.get("cool")! });
    await waitFor("every node's figures in the replicated state", async () => (await nodes()).every((n) => n.load.reported_at_ms > 0));
  }, 60_000);

  afterAll(async () => {
    await cluster.close();
  }, 30_000);

  it("heartbeat figures reach the replicated state; placement never passes a declared limit and prefers the least loaded", async () => {
    expect((await nodes()).find((n) => n.node_id === "hot")).toMatchObject({ limits: { cpu: 0.85 }, load: { cpu: 0.9, participants: 300 } });
    expect(await place("load-1")).toBe("cool");
    // A preferred node over its limit is not honoured; one with room is.
    expect(await place("load-2", { preferred_node_id: "hot" })).not.toBe("hot");
    expect(await place("load-3", { preferred_node_id: "warm" })).toBe("warm");
    // Excluded and required labels.
    expect(await place("load-4", { excluded_labels: { tier: "trial" } })).toBe("warm");
    expect(await place("load-5", { required_labels: { tier: "trial" } })).toBe("cool");
    // Under its limit again: the node takes meetings again once the leader writes the new figure.
    figures.set("hot", { cpu: 0.05, participants: 0 });
    await waitFor("hot's new figures", async () => (await nodes()).find((n) => n.node_id === "hot")!.load.cpu === 0.05);
    expect(await place("load-6")).toBe("hot");
  }, 60_000);

  it("steady figures cost no Raft writes: a load report is written only when a figure moves enough", async () => {
    const admin = cluster.members.admin("n1");
    const count = async () =>
      (await unary<{ entries: { kind: string }[] }>(admin, "AuditLog", { limit: 1000 }, 5000)).entries.filter((e) => e.kind === "reportLoad").length;
    const before = await count();
    await sleep(5_000); // heartbeats every 500 ms from three nodes: 30 beats
    expect(await count()).toBe(before);
    figures.set("warm", { cpu: 0.52, participants: 101 }); // less than 5% of a CPU: not written
    await sleep(3_000);
    expect(await count()).toBe(before);
    figures.set("warm", { cpu: 0.8, participants: 100 });
    await waitFor("the change to be written", async () => (await count()) === before + 1);
  }, 60_000);

  it("the CLI creates with constraints and shows the figures; bad constraints are refused naming the field", async () => {
    const run = await cluster.cli(["route", "cli-1", "--create", "--prefer", "warm", "--exclude", "tier=trial"]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/node\s+warm/);
    const list = await cluster.cli(["nodes"]);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/^NODE\s+ADDRESS\s+STATE\s+MEETINGS\s+REGION\s+GENERATION\s+CPU\s+IN MB\/S\s+OUT MB\/S\s+PEOPLE\s+HANDS OVER AT$/m);
    expect(list.stdout).toMatch(/^hot\s.*\s0\.05\/0\.85\s+0\.0\s+0\.0\s+0\s+-$/m);
    const bad = await cluster.cli(["route", "cli-2", "--create", "--exclude", "novalue"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('convene route: --exclude must be KEY=VALUE; got "novalue"\n');
    await expect(cluster.call("GetRoute", { meeting_id: "g-1", create: true, preferred_node_id: "no/slash" })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringContaining("preferred_node_id"),
    });
    await expect(cluster.call("GetRoute", { meeting_id: "g-1", create: true, excluded_labels: { "": "x" } })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringContaining("excluded_labels keys must be 1..64 characters"),
    });
    const NodeAgent = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.NodeAgent");
    const agent = new NodeAgent(cluster.addresses[0]!, grpc.credentials.createInsecure());
    try {
      await expect(unary(agent, "Register", { node_id: "bad", address: "127.0.0.1:1", capacity: 1, limits: { cpu: 2 } })).rejects.toMatchObject({
        code: grpc.status.INVALID_ARGUMENT,
        details: "limits.cpu must be a number in 0..1, got 2",
      });
      await expect(unary(agent, "Heartbeat", { node_id: "hot", generation: 1, cpu: -0.5 })).rejects.toMatchObject({
        code: grpc.status.INVALID_ARGUMENT,
        details: "cpu must be a number in 0..1, got -0.5",
      });
    } finally {
      agent.close();
    }
    // Nothing refused was created.
    await expect(cluster.call("GetRoute", { meeting_id: "g-1" })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  }, 60_000);
});
