/**
 * Members you can watch, with real processes: every member serves
 * Prometheus metrics, /livez and /readyz on its own HTTP port; every metric
 * the sample dashboard and alert rules of deploy/ name exists on a running
 * member; the counters and gauges say what happened (a leader, meetings,
 * a move after a meeting server's death, a fenced checkpoint); and the
 * members' logs follow one meeting across members with one grep.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { NEWEST_CLUSTER_VERSION } from "../src/coordinator/formats.js";
import { loadProto, lookup } from "../src/wire/proto.js";
import { coordinatorClient } from "./support/coordinator-load.js";
import { FakeMeetingNodes } from "./support/fake-meeting-node.js";
import { MemberCluster, unary } from "./support/member-cluster.js";

const IDS = ["n1", "n2", "n3"];
const deploy = (file: string): string => readFileSync(fileURLToPath(new URL(`../deploy/${file}`, import.meta.url)), "utf8");

/** Metric names in PromQL text: each family's name (a histogram's _bucket, _sum and _count belong to it). */
function metricNames(exprs: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (const e of exprs) for (const m of e.matchAll(/\bconvene_[a-z0-9_]+/g)) names.add(m[0].replace(/_(bucket|sum|count)$/, ""));
  return names;
}

/** The metric families a /metrics answer declares (# TYPE lines). */
function families(text: string): Set<string> {
  return new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
}

/** The value of one sample line, e.g. value(text, 'convene_meetings') or with labels 'convene_meeting_servers{state="DEAD"}'. */
function value(text: string, sample: string): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith(`${sample} `)) return Number(line.slice(sample.length + 1));
  }
  return undefined;
}

describe("members you can watch", () => {
  let cluster: MemberCluster;
  let servers: FakeMeetingNodes[] = [];
  let client: grpc.Client;
  const metrics = async (id: string): Promise<string> => (await fetch(`${await cluster.metricsUrl(id)}/metrics`)).text();

  beforeAll(async () => {
    cluster = new MemberCluster(IDS, undefined, { app: "coordinator", extraArgs: ["--log-level", "info"] });
    for (const id of IDS) cluster.start(id);
    await cluster.waitForLeader();
    await cluster.waitForAll();
    client = coordinatorClient(cluster.addresses.get("n1")!);
  }, 60_000);

  afterAll(async () => {
    for (const s of servers) s.kill();
    client?.close();
    await cluster?.close();
  });

  it("serves /livez and /readyz on a loopback port of its own", async () => {
    for (const id of IDS) {
      const base = await cluster.metricsUrl(id);
      expect(new URL(base).hostname).toBe("127.0.0.1");
      const live = await fetch(`${base}/livez`);
      expect([live.status, await live.text()]).toEqual([200, "ok\n"]);
      await expect.poll(async () => (await fetch(`${base}/readyz`)).status, { timeout: 10_000 }).toBe(200);
      expect((await fetch(`${base}/nowhere`)).status).toBe(404);
    }
  });

  it("every metric named by deploy/'s dashboard and alert rules exists on a running member", async () => {
    const dashboard = JSON.parse(deploy("grafana-dashboard.json")) as { panels: { targets: { expr: string }[] }[] };
    const dashboardExprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
    const rules = parseYaml(deploy("prometheus-alerts.yaml")) as { groups: { rules: { alert: string; expr: string }[] }[] };
    const ruleExprs = rules.groups.flatMap((g) => g.rules.map((r) => r.expr));
    expect(rules.groups.flatMap((g) => g.rules.map((r) => r.alert))).toEqual(
      expect.arrayContaining(["ConveneNoLeader", "ConveneFrequentLeaderChanges", "ConveneSlowDisk", "ConveneMeetingServersDead", "ConveneMovesSlow"]),
    );
    const named = metricNames([...dashboardExprs, ...ruleExprs]);
    expect(named.size).toBeGreaterThan(25);
    const served = families(await metrics("n2"));
    expect([...named].filter((n) => !served.has(n))).toEqual([]);
    // And at least what the issue lists, under Prometheus' naming rules.
    for (const name of [
      "convene_raft_has_leader", "convene_raft_is_leader", "convene_raft_leader_changes_total", "convene_raft_term",
      "convene_raft_commit_index", "convene_raft_applied_index", "convene_raft_proposals_committed_total",
      "convene_raft_proposals_failed_total", "convene_raft_proposals_pending", "convene_disk_write_duration_seconds",
      "convene_raft_apply_duration_seconds", "convene_snapshot_save_duration_seconds", "convene_snapshot_save_size_bytes",
      "convene_snapshot_restore_duration_seconds", "convene_snapshot_restore_size_bytes", "convene_peer_round_trip_seconds",
      "convene_grpc_requests_total", "convene_meeting_servers", "convene_meetings", "convene_meeting_moves_total",
      "convene_meeting_move_duration_seconds", "convene_checkpoint_saves_total", "convene_checkpoint_fencing_refusals_total",
      "convene_member_nodejs_eventloop_lag_p99_seconds",
    ]) {
      expect(served.has(name), name).toBe(true);
    }
  });

  it("counts what happened, and the logs follow one meeting across members by its id", async () => {
    const base = Number(cluster.addresses.get("n1")!.split(":")[1]);
    const coordinator = cluster.addresses.get("n1")!;
    servers = await Promise.all(
      ["m1", "m2"].map((nodeId, i) => FakeMeetingNodes.start([{ nodeId, coordinator, port: base + 6 + i, capacity: 10, alive: true }])),
    );
    const route = await unary<{ node_id: string; epoch: number }>(client, "GetRoute", { meeting_id: "watched-room", create: true, region: "" });
    const generations = new Map(servers.flatMap((s) => [...s.generations]));
    await unary(client, "GetRoute", { meeting_id: "other-room", create: true, region: "" });
    // A save from the owner, then one at a stale epoch: fenced.
    const NodeAgent = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.NodeAgent");
    const agent = new NodeAgent(coordinator, grpc.credentials.createInsecure());
    const owner = { node_id: route.node_id, generation: generations.get(route.node_id), meeting_id: "watched-room" };
    await unary(agent, "SaveCheckpoint", { ...owner, epoch: route.epoch, sequence: 1, state: Buffer.from("hello") });
    await expect(unary(agent, "SaveCheckpoint", { ...owner, epoch: route.epoch + 1, sequence: 2, state: Buffer.from("x") })).rejects.toMatchObject({ code: 9 });
    agent.close();
    // The owner dies: the meeting moves to the other server.
    servers[["m1", "m2"].indexOf(route.node_id)]!.kill();
    const other = route.node_id === "m1" ? "m2" : "m1";
    await expect
      .poll(async () => (await unary<{ node_id: string }>(client, "GetRoute", { meeting_id: "watched-room", create: false, region: "" })).node_id, { timeout: 15_000 })
      .toBe(other);

    const leader = await cluster.waitForLeader();
    await expect.poll(async () => value(await metrics(leader), "convene_meeting_move_duration_seconds_count"), { timeout: 10_000 }).toBeGreaterThanOrEqual(1);
    const texts = await Promise.all(IDS.map((id) => metrics(id)));
    expect(texts.map((t) => value(t, "convene_raft_is_leader")).reduce((a, b) => a! + b!, 0)).toBe(1);
    for (const t of texts) {
      expect(value(t, "convene_raft_has_leader")).toBe(1);
      expect(value(t, "convene_meetings")).toBe(2);
      expect(value(t, 'convene_meeting_servers{state="DEAD"}')).toBe(1);
      expect(value(t, 'convene_meeting_servers{state="ALIVE"}')).toBe(1);
      expect(value(t, 'convene_meeting_moves_total{reason="node_dead"}')).toBeGreaterThanOrEqual(1);
      expect(value(t, "convene_raft_applied_index")).toBeGreaterThan(3);
      expect(value(t, "convene_cluster_version")).toBe(NEWEST_CLUSTER_VERSION);
      expect(value(t, "convene_detector_timeout_multiplier")).toBe(1); // three idle members
    }
    const leaderText = texts[IDS.indexOf(leader)]!;
    expect(value(leaderText, "convene_checkpoint_saves_total")).toBeGreaterThanOrEqual(1);
    expect(value(leaderText, "convene_checkpoint_fencing_refusals_total")).toBeGreaterThanOrEqual(1);
    expect(value(leaderText, "convene_raft_proposals_committed_total")).toBeGreaterThan(3);
    expect(value(leaderText, "convene_disk_write_duration_seconds_count")).toBeGreaterThan(3);
    expect(leaderText).toMatch(/^convene_grpc_requests_total\{method="\/convene\.v1\.Coordinator\/GetRoute",code="OK"\} \d+/m);
    expect(leaderText).toMatch(/^convene_grpc_requests_total\{method="\/convene\.v1\.NodeAgent\/SaveCheckpoint",code="FAILED_PRECONDITION"\} 1$/m);
    await expect.poll(async () => /^convene_peer_round_trip_seconds_count\{peer="n\d"\} [1-9]/m.test(await metrics("n3")), { timeout: 15_000 }).toBe(true);

    // One grep over every member's log follows the meeting: its move, with node, epoch and term, on each member.
    await expect
      .poll(() => IDS.filter((id) => (cluster.logs.get(id) ?? []).join("").split("\n").some((l) => l.includes('"meetingId":"watched-room"') && l.includes('"msg":"meeting moved"'))).length, { timeout: 10_000 })
      .toBe(3);
    for (const id of IDS) {
      const line = (cluster.logs.get(id) ?? []).join("").split("\n").find((l) => l.includes('"meetingId":"watched-room"') && l.includes('"msg":"meeting moved"'))!;
      expect(JSON.parse(line)).toMatchObject({ meetingId: "watched-room", nodeId: other, from: route.node_id, epoch: route.epoch + 1, term: expect.any(Number), index: expect.any(Number), sequence: 1 });
    }
    const refused = (cluster.logs.get(leader) ?? []).join("").split("\n").find((l) => l.includes('"msg":"checkpoint refused (fencing)"'));
    expect(JSON.parse(refused!)).toMatchObject({ meetingId: "watched-room", nodeId: route.node_id, epoch: route.epoch + 1, term: expect.any(Number) });
  }, 60_000);

  it("/readyz answers 503 on a member that has lost its leader", async () => {
    const [a, b, c] = IDS;
    const base = await cluster.metricsUrl(c!);
    await cluster.kill9(a!);
    await cluster.kill9(b!);
    await expect.poll(async () => (await fetch(`${base}/readyz`)).status, { timeout: 15_000 }).toBe(503);
    expect((await fetch(`${base}/livez`)).status).toBe(200);
  });
});
