/**
 * Backup and restore with real processes: a coordinator group under write
 * load (meetings created here, checkpoints saved by real node agents) is
 * backed up with `convene snapshot save`; every data directory is then
 * destroyed and three members are restored from the file with `convene
 * snapshot restore`. The restored group must hold every write acknowledged
 * before the backup began, byte for byte, and be exactly the backup's state;
 * the meeting servers, which outlived the outage, carry on without
 * registering again. A truncated or corrupted file is refused and nothing
 * is written.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { decodeState } from "../src/coordinator/state-snapshot.js";
import { defaultStateConfig } from "../src/coordinator/state-config.js";
import { readBackup } from "../src/member/backup-file.js";
import { AgentFleet } from "./support/agent-fleet.js";
import { digestDiff, digestOfState, stateDigest } from "./support/cluster-digest.js";
import { CreateLoad, coordinatorClient, missingAcknowledged, runConvene } from "./support/coordinator-load.js";
import { MemberCluster, unary } from "./support/member-cluster.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const IDS = ["n1", "n2", "n3"];

describe("convene snapshot save / status / restore", () => {
  let cluster: MemberCluster | undefined;
  let fleet: AgentFleet | undefined;
  const clients: grpc.Client[] = [];
  const loads: CreateLoad[] = [];
  afterEach(async () => {
    await Promise.all(loads.splice(0).map((l) => l.stop()));
    fleet?.kill();
    for (const c of clients) c.close();
    await cluster?.close();
    cluster = undefined;
    fleet = undefined;
  });

  it("a backup under load restores into a new group holding every write acknowledged before it, byte for byte", async () => {
    cluster = new MemberCluster(IDS, undefined, { app: "coordinator", snapshotEvery: 300 });
    for (const id of IDS) cluster.start(id);
    await cluster.waitForAll();
    await cluster.waitForLeader();
    const addresses = IDS.map((id) => cluster!.addresses.get(id)!);
    const port = Number(addresses[0]!.split(":")[1]);
    fleet = await AgentFleet.start({
      coordinators: addresses,
      nodes: ["m1", "m2", "m3"].map((nodeId, i) => ({ nodeId, port: port + 6 + i, capacity: 100 })),
      checkpointIntervalMs: 1_000,
    });
    const generations = new Map(fleet.generations);
    const load = new CreateLoad(() => cluster!.running().map((id) => cluster!.addresses.get(id)!), "room", 3, 150);
    loads.push(load);
    await load.until(40);
    // More than 20 checkpoints acknowledged before the backup begins (checked below).
    await expect.poll(() => fleet!.saves.length, { timeout: 30_000 }).toBeGreaterThan(20);

    const file = join(cluster.dir, "backups", "state.backup");
    mkdirSync(join(cluster.dir, "backups"));
    const startedMs = Date.now();
    const save = await runConvene(["snapshot", "save", file, "--coordinators", addresses[1]!]);
    expect(save.code, save.stderr).toBe(0);
    expect(save.stdout).toMatch(/^saved .*: index \d+, term \d+/);
    // Atomic: nothing beside the file (no temporary left behind).
    expect(readdirSync(join(cluster.dir, "backups"))).toEqual(["state.backup"]);
    // The load runs on for a moment after the backup (its creates must not
    // be in the restored group); nothing is judged by how many came.
    await sleep(500);
    await load.stop();
    const acknowledgedBefore = [...load.acked.values()].filter((at) => at < startedMs).length;
    expect(acknowledgedBefore).toBeGreaterThan(20);
    expect(fleet.saves.filter((s) => s.atMs < startedMs).length).toBeGreaterThan(20);

    const status = await runConvene(["snapshot", "status", file, "--json"]);
    expect(status.code, status.stderr).toBe(0);
    const described = JSON.parse(status.stdout) as { index: number; term: number; nodes: number; meetings: number; checkpoints: number; sha256: string; cluster_id: string };
    expect(described.index).toBeGreaterThan(0);
    expect(described.nodes).toBe(3);
    expect(described.meetings).toBeGreaterThanOrEqual(acknowledgedBefore);
    expect(described.checkpoints).toBeGreaterThan(0);
    expect(described.cluster_id).toBe("convene");

    // The meeting servers stop saving (their heartbeats go on), then every member and every data directory is gone.
    fleet.freeze();
    // A save begun before the freeze ends within the agents' rpcTimeoutMs (1 s), answered or not.
    await sleep(1_000);
    await Promise.all(IDS.map((id) => cluster!.kill9(id)));
    for (const id of IDS) rmSync(cluster.dataDir(id), { recursive: true, force: true });

    for (const id of IDS) {
      const r = await runConvene(["snapshot", "restore", file, "--data", cluster.dataDir(id), "--id", id, "--peers", cluster.peersArg()]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`index ${described.index}, term ${described.term}`);
    }
    for (const id of IDS) cluster.start(id);
    await cluster.waitForAll();
    await cluster.waitForLeader();

    const client = coordinatorClient(addresses[2]!);
    clients.push(client);
    expect(await missingAcknowledged(client, load.acked, fleet.saves, startedMs)).toEqual([]);
    // Exactly the backup's state: every node, meeting, route, epoch and checkpoint.
    const backup = decodeState(readBackup(file).state, defaultStateConfig());
    expect(digestDiff(digestOfState(backup), await stateDigest(client))).toBe("");
    // The meeting servers re-attached as they were.
    expect(fleet.reregistrations).toEqual([]);
    const nodes = await unary<{ nodes: { node_id: string; generation: number; state: number }[] }>(client, "ListNodes", {});
    expect(new Map(nodes.nodes.map((n) => [n.node_id, n.generation]))).toEqual(generations);
    // A new group: its own cluster id, the same on every member; and it takes writes.
    const ids = await Promise.all(IDS.map(async (id) => (await cluster!.status(id)) as unknown as { cluster_id: string }));
    expect(ids[0]!.cluster_id).toMatch(/^convene-[0-9a-f]{16}$/);
    expect(new Set(ids.map((s) => s.cluster_id)).size).toBe(1);
    await unary(client, "GetRoute", { meeting_id: "after-restore", create: true, region: "" }, 5_000);

    // A truncated or corrupted copy is refused with the reason, and nothing is written.
    const bytes = readFileSync(file);
    const truncated = join(cluster.dir, "backups", "truncated.backup");
    writeFileSync(truncated, bytes.subarray(0, bytes.length - 1000));
    const corrupted = join(cluster.dir, "backups", "corrupted.backup");
    copyFileSync(file, corrupted);
    const flipped = readFileSync(corrupted);
    flipped[Math.floor(flipped.length / 2)]! ^= 0x01;
    writeFileSync(corrupted, flipped);
    for (const [bad, reason] of [
      [truncated, "is truncated"],
      [corrupted, "is corrupted"],
    ] as const) {
      const target = join(cluster.dir, `restore-of-${reason.replace(/ /g, "-")}`);
      const r = await runConvene(["snapshot", "restore", bad, "--data", target, "--id", "n1", "--peers", cluster.peersArg()]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(reason);
      expect(existsSync(target)).toBe(false);
      expect(readdirSync(cluster.dir).filter((f) => f.includes("restoring"))).toEqual([]);
      const s = await runConvene(["snapshot", "status", bad]);
      expect(s.code).toBe(1);
      expect(s.stderr).toContain(reason);
    }
    // A restore never writes over a data directory.
    const r = await runConvene(["snapshot", "restore", file, "--data", cluster.dataDir("n1"), "--id", "n1", "--peers", cluster.peersArg()]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("is not an empty directory");
  }, 180_000);
});
