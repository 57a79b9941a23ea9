/**
 * Real member processes on 127.0.0.1, killed with kill -9: no acknowledged
 * write is ever lost, every member ends with the same state, and the
 * client history is linearizable (checked by the simulation's checker).
 */
import { appendFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type HistoryOp, checkLinearizable } from "./support/linearizability.js";
import { MemberCluster, unary } from "./support/member-cluster.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Writers that never stop on errors: unique keys prove durability, shared keys feed the linearizability check. */
class Workload {
  readonly history: HistoryOp[] = [];
  readonly acked = new Map<string, string>();
  private running = true;
  private seq = 0;
  private readonly started = performance.now();
  private readonly loops: Promise<void>[] = [];

  constructor(
    private readonly cluster: MemberCluster,
    writers: number,
  ) {
    for (let w = 0; w < writers; w++) this.loops.push(this.loop(w));
  }

  private now(): number {
    return performance.now() - this.started;
  }

  private async loop(client: number): Promise<void> {
    while (this.running) {
      const targets = this.cluster.running();
      if (targets.length === 0) {
        await sleep(50);
        continue;
      }
      const target = targets[(this.seq + client) % targets.length]!;
      const n = ++this.seq;
      const shared = n % 4 === 0;
      const key = shared ? `r${n % 3}` : `w-${n}`;
      const isRead = shared && n % 8 === 0;
      const call = this.now();
      try {
        if (isRead) {
          const res = await unary<{ found: boolean; value: string }>(this.cluster.kv(target), "Get", { key }, 2000);
          this.history.push({ client, call, ret: this.now(), op: { kind: "read", key }, result: { kind: "read", value: res.found ? res.value : null } });
        } else {
          const value = `v${n}`;
          await unary(this.cluster.kv(target), "Put", { key, value }, 2000);
          if (!shared) this.acked.set(key, value);
          if (shared) this.history.push({ client, call, ret: this.now(), op: { kind: "write", key, value }, result: { kind: "write" } });
        }
      } catch {
        // Unknown outcome: the write may or may not have happened.
        if (shared && !isRead) this.history.push({ client, call, op: { kind: "write", key, value: `v${n}` } });
        await sleep(20);
      }
    }
  }

  /**
   * Lets the load run until `writes` more writes are acknowledged: a phase
   * of a test is paced by what the cluster did, not by time (a loaded
   * machine may acknowledge nothing in a second).
   */
  async progress(writes: number, timeoutMs = 60_000): Promise<void> {
    const target = this.acked.size + writes;
    await vi.waitFor(() => expect(this.acked.size, `acknowledged writes (waiting for ${target})`).toBeGreaterThanOrEqual(target), { timeout: timeoutMs, interval: 20 });
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }
}

async function expectConverged(cluster: MemberCluster, ids: string[], acked: Map<string, string>): Promise<void> {
  const leader = await cluster.waitForLeader(20_000, ids);
  const commit = (await cluster.status(leader)).commit_index;
  await cluster.waitForApplied(ids, commit);
  const dumps = await Promise.all(ids.map((id) => cluster.dump(id)));
  const maps = dumps.map((d) => new Map(d.entries.map((e) => [e.key, e.value])));
  for (const [i, m] of maps.entries()) {
    const missing = [...acked].filter(([k, v]) => m.get(k) !== v);
    expect(missing, `${ids[i]} is missing acknowledged writes`).toEqual([]);
  }
  // Same state everywhere (compare what all have applied: the shared prefix).
  for (const m of maps.slice(1)) expect([...m].sort()).toEqual([...maps[0]!].sort());
}

describe("member processes survive kill -9", () => {
  let cluster: MemberCluster | undefined;
  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
  });

  it("kill -9 the leader, then a follower, restart them: nothing acknowledged is lost, history linearizable", async () => {
    // With catch-up entries, so real processes run that path too.
    cluster = new MemberCluster(["n1", "n2", "n3"], undefined, { snapshotEvery: 300, snapshotCatchUpEntries: 5_000 });
    for (const id of ["n1", "n2", "n3"]) cluster.start(id);
    const firstLeader = await cluster.waitForLeader();
    const load = new Workload(cluster, 8);
    await load.progress(40);
    await cluster.kill9(firstLeader);
    await load.progress(40); // through the new leader
    const follower = cluster.running()[0]!;
    await cluster.kill9(follower);
    await sleep(800); // one member of three: no write can be acknowledged; clients keep trying
    cluster.start(firstLeader);
    cluster.start(follower);
    await cluster.waitForLeader();
    await load.progress(40);
    await load.stop();
    expect(load.acked.size).toBeGreaterThan(100);
    await expectConverged(cluster, ["n1", "n2", "n3"], load.acked);
    const verdict = checkLinearizable(load.history);
    expect(verdict.ok, JSON.stringify(verdict).slice(0, 500)).toBe(true);
  }, 90_000);

  it("all three killed at once and restarted: identical state with every acknowledged write", async () => {
    cluster = new MemberCluster(["n1", "n2", "n3"], undefined, { snapshotEvery: 200 });
    for (const id of ["n1", "n2", "n3"]) cluster.start(id);
    await cluster.waitForLeader();
    const load = new Workload(cluster, 8);
    await load.progress(100);
    await Promise.all(["n1", "n2", "n3"].map((id) => cluster!.kill9(id)));
    await load.stop();
    for (const id of ["n1", "n2", "n3"]) cluster.start(id);
    await expectConverged(cluster, ["n1", "n2", "n3"], load.acked);
  }, 90_000);

  it("a member whose last LevelDB write was torn restarts consistent and catches up", async () => {
    cluster = new MemberCluster(["n1", "n2", "n3"]);
    for (const id of ["n1", "n2", "n3"]) cluster.start(id);
    const leader = await cluster.waitForLeader();
    const victim = ["n1", "n2", "n3"].find((id) => id !== leader)!;
    const load = new Workload(cluster, 8);
    await load.progress(40);
    await cluster.kill9(victim);
    // A write torn by a power cut: the start of a record that never finished
    // (so was never acknowledged) at the end of the newest write-ahead log,
    // its header claiming more bytes than follow, with garbage after it.
    const dir = cluster.dataDir(victim);
    const logs = readdirSync(dir).filter((f) => f.endsWith(".log")).map((f) => join(dir, f));
    const newest = logs.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0]!;
    const torn = Buffer.alloc(7 + 40, 0xa5);
    torn.writeUInt16LE(4000, 4); // length: far past the end of the file
    torn[6] = 1; // record type FULL
    appendFileSync(newest, torn);
    cluster.start(victim);
    await load.progress(40);
    await load.stop();
    await expectConverged(cluster, ["n1", "n2", "n3"], load.acked);
  }, 90_000);

  it("replaces a member whose disk is gone: learner, snapshot catch-up, promote, remove", async () => {
    // No catch-up entries (the default): the new member's log (from index 1) must come as the leader's snapshot.
    cluster = new MemberCluster(["n1", "n2", "n3"], undefined, { snapshotEvery: 100, snapshotCatchUpEntries: 0 });
    for (const id of ["n1", "n2", "n3"]) cluster.start(id);
    const leader = await cluster.waitForLeader();
    const lost = ["n1", "n2", "n3"].find((id) => id !== leader)!;
    const load = new Workload(cluster, 4);
    await load.progress(30);
    await cluster.kill9(lost); // and its disk is gone: it never comes back
    const port = Number(cluster.addresses.get("n1")!.split(":")[1]) + 5;
    cluster.addMember("n4", `127.0.0.1:${port}`);
    cluster.start("n4", { join: true, peers: ["n1", "n2", "n3", "n4"] });
    const alive = ["n1", "n2", "n3"].filter((id) => id !== lost);
    await unary(cluster.admin(alive[0]!), "AddLearner", { id: "n4", address: cluster.addresses.get("n4") }, 5000);
    const target = (await cluster.status(leader)).commit_index;
    await cluster.waitForApplied(["n4"], target, 30_000);
    expect((await cluster.status("n4")).snapshot_index).toBeGreaterThan(0);
    await unary(cluster.admin(alive[1]!), "Promote", { id: "n4", address: "" }, 5000);
    await unary(cluster.admin(alive[0]!), "Remove", { id: lost, address: "" }, 5000);
    await load.progress(30); // with the new membership
    await load.stop();
    const members = [...alive, "n4"];
    const s = await cluster.status(members[0]!);
    expect(s.voters.sort()).toEqual(members.sort());
    await expectConverged(cluster, members, load.acked);
  }, 120_000);

  it("stops cleanly on SIGTERM (exit 0) and restarts with its data", async () => {
    cluster = new MemberCluster(["n1", "n2", "n3"]);
    for (const id of ["n1", "n2", "n3"]) cluster.start(id);
    await cluster.waitForLeader();
    const load = new Workload(cluster, 4);
    await load.progress(30);
    const code = await cluster.terminate("n2");
    expect(code).toBe(0);
    cluster.start("n2");
    await load.progress(20);
    await load.stop();
    await expectConverged(cluster, ["n1", "n2", "n3"], load.acked);
  }, 60_000);
});
