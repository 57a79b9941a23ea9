/**
 * Losing a majority for good, with real processes: under write load (new
 * meetings here, checkpoints from real node agents) two of three members
 * are killed with kill -9 and their data deleted. The third is restarted
 * with --force-new-cluster and becomes a group of one with all of its
 * state, then grows back to three with `members add` and `promote`. The
 * survivor was the leader, so every acknowledged write had reached it: none
 * may be lost. The meeting servers re-attach without registering again
 * (same generation), and a restart with the flag still set is refused.
 */
import { rmSync } from "node:fs";
import type * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { AgentFleet } from "./support/agent-fleet.js";
import { CreateLoad, coordinatorClient, missingAcknowledged } from "./support/coordinator-load.js";
import { MemberCluster, unary } from "./support/member-cluster.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("losing a majority: --force-new-cluster", () => {
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

  it("the survivor becomes a group of one with all its state, grows back to three, and meeting servers carry on", async () => {
    cluster = new MemberCluster(["n1", "n2", "n3"], undefined, { app: "coordinator", snapshotEvery: 300 });
    for (const id of ["n1", "n2", "n3"]) cluster.start(id);
    const survivor = await cluster.waitForLeader();
    const lost = ["n1", "n2", "n3"].filter((id) => id !== survivor);
    const base = Number(cluster.addresses.get("n1")!.split(":")[1]);
    fleet = await AgentFleet.start({
      coordinators: ["n1", "n2", "n3"].map((id) => cluster!.addresses.get(id)!),
      nodes: ["m1", "m2", "m3"].map((nodeId, i) => ({ nodeId, port: base + 7 + i, capacity: 100 })),
      checkpointIntervalMs: 1_000,
    });
    const generations = new Map(fleet.generations);
    const load = new CreateLoad(() => cluster!.running().map((id) => cluster!.addresses.get(id)!), "room", 3, 300, 20);
    loads.push(load);
    await load.until(40);
    // Checkpoints acknowledged before the loss too, not only meetings.
    await expect.poll(() => fleet!.saves.length, { timeout: 30_000 }).toBeGreaterThan(10);

    // Both followers' disks are gone for good.
    await Promise.all(lost.map((id) => cluster!.kill9(id)));
    for (const id of lost) rmSync(cluster.dataDir(id), { recursive: true, force: true });
    // A second of the load against a leader with no quorum (nothing can be acknowledged): a phase, not a wait.
    await sleep(1_000);
    await cluster.kill9(survivor);
    const ackedBeforeLoss = load.acked.size;

    cluster.start(survivor, { args: ["--force-new-cluster"] });
    expect(await cluster.waitForLeader(30_000, [survivor])).toBe(survivor);
    const alone = await cluster.status(survivor);
    expect(alone.voters).toEqual([survivor]);
    expect(alone.learners).toEqual([]);

    // Grow back to three: new members with new ids and empty disks.
    for (const [i, id] of ["n4", "n5"].entries()) {
      cluster.addMember(id, `127.0.0.1:${base + 5 + i}`);
      cluster.start(id, { join: true, peers: [survivor, id] });
      await cluster.waitForAll(30_000);
      await unary(cluster.admin(survivor), "AddLearner", { id, address: cluster.addresses.get(id) }, 10_000);
      await cluster.waitForApplied([id], (await cluster.status(survivor)).commit_index, 30_000);
      await unary(cluster.admin(survivor), "Promote", { id, address: "" }, 10_000);
    }
    const members = [survivor, "n4", "n5"].sort();
    expect((await cluster.status(survivor)).voters.sort()).toEqual(members);
    await load.until(ackedBeforeLoss + 20); // writes go on after the recovery
    await load.stop();
    fleet.freeze();
    // A save begun before the freeze ends within the agents' rpcTimeoutMs (1 s), answered or not.
    await sleep(1_000);

    // Nothing acknowledged is lost, read through a new member.
    const client = coordinatorClient(cluster.addresses.get("n4")!);
    clients.push(client);
    expect(await missingAcknowledged(client, load.acked, fleet.saves)).toEqual([]);
    const commit = (await cluster.status(survivor)).commit_index;
    await cluster.waitForApplied(members, commit);
    // The meeting servers never registered again: same generations, alive.
    expect(fleet.reregistrations).toEqual([]);
    const nodes = await unary<{ nodes: { node_id: string; generation: number; state: number }[] }>(client, "ListNodes", {});
    expect(new Map(nodes.nodes.map((n) => [n.node_id, n.generation]))).toEqual(generations);
    expect(nodes.nodes.map((n) => n.state)).toEqual([1, 1, 1]);

    // A restart with the flag still set is refused, changing nothing; without it the member rejoins its group.
    await cluster.kill9(survivor);
    cluster.start(survivor, { args: ["--force-new-cluster"] });
    expect(await cluster.waitForExit(survivor)).toBe(2);
    expect(cluster.recentLogs()).toContain("became a new one-member group already");
    cluster.start(survivor);
    await cluster.waitForLeader(30_000, members);
    await cluster.waitForApplied(members, commit);
    expect((await cluster.status("n5")).voters.sort()).toEqual(members);
  }, 180_000);
});
