/**
 * A rolling upgrade from the previous release (test/support/release-build.ts)
 * to this one, and back, with real processes under write load and
 * meeting-server failures (`npm run test:ops`; CONVENE_OPS_E2E=1):
 *
 *   1. three members of the previous release; meeting servers (real node
 *      agents) and creates write all along;
 *   2. n1 then n2 replaced by this release (SIGTERM, same data directory):
 *      the cluster version stays 1, since n3 still runs the previous one;
 *   3. the reverse, while the cluster version is still 1: n2 then n1 go
 *      back to the previous release, which reads everything the new one
 *      wrote;
 *   4. all three replaced by this release: the leader raises the cluster
 *      version to the newest (3) and the group writes the new formats
 *      (commands carry their term).
 * Before a member stops, and after each step, leadership goes to a member
 * of this release when there is one (the procedure of README "Rolling
 * upgrades"). After every step the group answers and converges; at the end every
 * acknowledged write is there, byte for byte, and no meeting server that
 * stayed up ever had to register again. A meeting server is killed with
 * kill -9 at each step and started again (it registers again: it died).
 */
import type * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NEWEST_COMMAND_VERSION } from "../src/coordinator/commands.js";
import { NEWEST_CLUSTER_VERSION } from "../src/coordinator/formats.js";
import { AgentFleet } from "./support/agent-fleet.js";
import { memberRouteTable } from "./support/cluster-digest.js";
import { CreateLoad, coordinatorClient, missingAcknowledged } from "./support/coordinator-load.js";
import { MemberCluster, buildOnce, unary } from "./support/member-cluster.js";
import { type ReleaseBuild, buildRelease } from "./support/release-build.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const IDS = ["n1", "n2", "n3"];

interface Status {
  commit_index: number;
  applied_index: number;
  cluster_version?: number;
  formats?: { command: number } | null;
}

describe.skipIf(!process.env.CONVENE_OPS_E2E)("rolling upgrade from the previous release and back", () => {
  let previous: ReleaseBuild;
  let cluster: MemberCluster | undefined;
  const fleets: AgentFleet[] = [];
  const clients: grpc.Client[] = [];
  const loads: CreateLoad[] = [];

  beforeAll(() => {
    previous = buildRelease();
    buildOnce();
  }, 600_000);

  afterAll(async () => {
    await Promise.all(loads.splice(0).map((l) => l.stop()));
    for (const f of fleets) f.kill();
    for (const c of clients) c.close();
    await cluster?.close();
  });

  it("replaces members one at a time, both ways, under load and meeting-server failures: nothing acknowledged is lost, nobody re-registers", async () => {
    cluster = new MemberCluster(IDS, undefined, { app: "coordinator", snapshotEvery: 500, compiled: true });
    const c = cluster;
    const old = { cli: previous.cli, cwd: previous.dir };
    const release = new Map<string, "previous" | "new">();
    const startAs = (id: string, which: "previous" | "new"): void => {
      release.set(id, which);
      c.start(id, which === "previous" ? old : {});
    };
    for (const id of IDS) startAs(id, "previous");
    await c.waitForLeader(30_000);
    const addresses = IDS.map((id) => c.addresses.get(id)!);
    const base = Number(addresses[0]!.split(":")[1]);

    const stable = await AgentFleet.start({
      coordinators: addresses,
      nodes: ["m1", "m2", "m3"].map((nodeId, i) => ({ nodeId, port: base + 5 + i, capacity: 1_000 })),
      checkpointIntervalMs: 2_000,
    });
    fleets.push(stable);
    const stableGenerations = new Map(stable.generations);
    const startVictim = async (): Promise<AgentFleet> => {
      const f = await AgentFleet.start({ coordinators: addresses, nodes: [{ nodeId: "v1", port: base + 8, capacity: 1_000 }], checkpointIntervalMs: 2_000 });
      fleets.push(f);
      return f;
    };
    let victim = await startVictim();
    const load = new CreateLoad(() => c.running().map((id) => c.addresses.get(id)!), "room", 2, 600, 150);
    loads.push(load);
    await load.until(20);

    /**
     * Every member has applied the leader's commit index and all hold the same
     * routes: compared while the writers pause (the tables are read one after
     * another), until they agree.
     */
    const converged = async (): Promise<void> => {
      load.pause();
      for (const f of fleets) f.freeze();
      try {
        await expect
          .poll(
            async () => {
              const leader = await c.waitForLeader(30_000);
              await c.waitForApplied(IDS, (await c.status(leader)).commit_index, 30_000);
              const tables = await Promise.all(IDS.map((id) => memberRouteTable(c.addresses.get(id)!)));
              return tables.filter((t) => JSON.stringify(t) !== JSON.stringify(tables[0])).length;
            },
            { timeout: 30_000, interval: 500 },
          )
          .toBe(0);
      } finally {
        load.resume();
        for (const f of fleets) f.thaw();
      }
    };
    const clusterVersions = async (): Promise<number[]> => Promise.all(IDS.map(async (id) => ((await c.status(id)) as unknown as Status).cluster_version ?? 0));

    /**
     * The leader should run this release whenever one does (README: a
     * member about to stop hands leadership over first, and the new
     * release's failure detector judges meeting servers more carefully).
     */
    const leadWith = async (avoid?: string): Promise<void> => {
      const leader = await c.waitForLeader(30_000);
      const candidates = IDS.filter((id) => id !== leader && id !== avoid);
      const target = candidates.find((id) => release.get(id) === "new") ?? (leader === avoid ? candidates[0] : undefined);
      if (!target || (leader !== avoid && release.get(leader) === "new")) return;
      await unary(c.admin(leader), "TransferLeadership", { id: target, address: "" }, 10_000);
      await expect.poll(async () => (await c.status(target)).role, { timeout: 10_000 }).toBe("leader");
    };

    /** Stops `id` (SIGTERM, as an operator's restart), starts it on `which`, kills and restarts the victim meeting server meanwhile. */
    const replace = async (id: string, which: "previous" | "new"): Promise<void> => {
      await leadWith(id);
      expect(await c.terminate(id)).toBe(0);
      victim.kill();
      startAs(id, which);
      await c.waitForAll(30_000);
      victim = await startVictim();
      await converged();
      await leadWith();
      await sleep(1_000); // writes go on with the new mix
    };

    await replace("n1", "new");
    await replace("n2", "new");
    expect((await c.status("n1")) as unknown as Status).toMatchObject({ cluster_version: 1, formats: { command: NEWEST_COMMAND_VERSION } });
    await sleep(2_500); // the leader's monitor has had its rounds: n3 holds the version at 1
    expect((await clusterVersions()).filter((v) => v !== 0)).toEqual([1, 1]);

    // The reverse while the cluster version is 1: back to the previous release, which reads all of it.
    await replace("n2", "previous");
    await replace("n1", "previous");
    expect(await clusterVersions()).toEqual([0, 0, 0]);

    for (const id of IDS) await replace(id, "new");
    await expect.poll(clusterVersions, { timeout: 20_000, interval: 250 }).toEqual([NEWEST_CLUSTER_VERSION, NEWEST_CLUSTER_VERSION, NEWEST_CLUSTER_VERSION]);
    await sleep(1_500); // writes in the new formats
    await load.stop();
    await converged();
    for (const f of fleets) f.freeze();
    await sleep(1_000);

    const client = coordinatorClient(addresses[0]!);
    clients.push(client);
    expect(load.acked.size).toBeGreaterThan(100);
    const saves = fleets.flatMap((f) => f.saves);
    expect(saves.length).toBeGreaterThan(100);
    expect(await missingAcknowledged(client, load.acked, saves)).toEqual([]);
    expect(stable.reregistrations).toEqual([]);
    const nodes = await unary<{ nodes: { node_id: string; generation: number; state: number }[] }>(client, "ListNodes", {});
    for (const n of nodes.nodes.filter((x) => stableGenerations.has(x.node_id))) {
      expect([n.node_id, n.generation, n.state]).toEqual([n.node_id, stableGenerations.get(n.node_id), 1]);
    }
    // The new command version is in use: the audit trail names the proposing leader's term.
    const audit = await unary<{ entries: { kind: string; term: number }[] }>(c.admin("n2"), "AuditLog", { limit: 50 }, 5_000);
    expect(audit.entries.length).toBeGreaterThan(0);
    expect(audit.entries.at(-1)!.term).toBeGreaterThan(0);

    // Now the previous release may not join: it would apply the new commands as malformed ones.
    c.addMember("n4", `127.0.0.1:${base + 9}`);
    c.start("n4", { ...old, join: true, peers: [...IDS, "n4"] });
    await c.waitForAll(30_000);
    await expect(unary(c.admin("n1"), "AddLearner", { id: "n4", address: c.addresses.get("n4") }, 10_000)).rejects.toMatchObject({
      code: 9,
      details: expect.stringContaining(`older than cluster version ${NEWEST_CLUSTER_VERSION} needs`),
    });
    expect((await c.status("n1")).learners).toEqual([]);
  }, 600_000);
});
