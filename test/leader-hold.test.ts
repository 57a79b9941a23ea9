/**
 * A call that reaches a member while no leader is known is held until one
 * is elected (src/member/leader-hold.ts), up to LEADER_HOLD_MS and
 * never past its deadline, instead of being answered UNAVAILABLE at once
 * into an election that is about to end. Real member processes of a group
 * of three: n1 alone has no quorum, so it knows no leader.
 */
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { LEADER_HOLD_MS } from "../src/member/leader-hold.js";
import { loadProto, lookup } from "../src/wire/proto.js";
import { MemberCluster, unary } from "./support/member-cluster.js";

const CoordinatorClient = lookup<grpc.ServiceClientConstructor>(loadProto("convene.proto"), "convene.v1.Coordinator");

async function answered(call: Promise<unknown>): Promise<{ ok: boolean; code?: number; details?: string; ms: number }> {
  const started = Date.now();
  try {
    await call;
    return { ok: true, ms: Date.now() - started };
  } catch (err) {
    const e = err as grpc.ServiceError;
    return { ok: false, code: e.code, details: e.details, ms: Date.now() - started };
  }
}

describe("a call while no leader is known", () => {
  let cluster: MemberCluster | undefined;
  let client: grpc.Client | undefined;
  afterEach(async () => {
    client?.close();
    await cluster?.close();
  });

  async function lonelyMember(): Promise<MemberCluster> {
    const c = new MemberCluster(["n1", "n2", "n3"], undefined, { app: "coordinator" });
    c.start("n1");
    // Serving, but without a quorum it elects no one.
    for (const until = Date.now() + 30_000; ; ) {
      const serving = await unary(c.admin("n1"), "Status", {}, 2_000).then(() => true, () => false);
      if (serving) break;
      if (Date.now() > until) throw new Error(`n1 did not serve in 30 s\n${c.recentLogs()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    client = new CoordinatorClient(c.addresses.get("n1")!, grpc.credentials.createInsecure());
    return c;
  }

  it("is answered once a leader is elected", async () => {
    // n1 and n2 elect a leader; n2 is then stopped (SIGSTOP), so n1 loses the leader and knows none.
    const c = new MemberCluster(["n1", "n2", "n3"], undefined, { app: "coordinator" });
    cluster = c;
    c.start("n1");
    c.start("n2");
    await c.waitForLeader(30_000);
    const n2 = c.pid("n2")!;
    process.kill(n2, "SIGSTOP");
    try {
      for (const until = Date.now() + 30_000; ; ) {
        const status = await unary<{ leader_id: string }>(c.admin("n1"), "Status", {}, 2_000).catch(() => undefined);
        if (status?.leader_id === "") break;
        if (Date.now() > until) throw new Error("n1 still knew a leader 30 s after n2 stopped");
        await new Promise((r) => setTimeout(r, 50));
      }
      client = new CoordinatorClient(c.addresses.get("n1")!, grpc.credentials.createInsecure());
      const call = answered(unary(client, "ClusterStatus", {}, 30_000));
      // The quorum is back while the call waits: n2 continues at once, and an election takes a second or two.
      await new Promise((r) => setTimeout(r, 200));
      process.kill(n2, "SIGCONT");
      const result = await call;
      expect(result, `${result.details} after ${result.ms} ms\n${c.recentLogs()}`).toMatchObject({ ok: true });
      expect(result.ms).toBeGreaterThanOrEqual(200);
    } finally {
      process.kill(n2, "SIGCONT");
    }
  }, 90_000);

  it(`is answered UNAVAILABLE after ${LEADER_HOLD_MS} ms when none is elected, naming that no leader is known`, async () => {
    cluster = await lonelyMember();
    const result = await answered(unary(client!, "ClusterStatus", {}, 30_000));
    expect(result).toMatchObject({ ok: false, code: grpc.status.UNAVAILABLE });
    expect(result.details).toMatch(/no leader is known/);
    expect(result.ms).toBeGreaterThanOrEqual(LEADER_HOLD_MS - 50);
    expect(result.ms).toBeLessThan(LEADER_HOLD_MS + 10_000);
  }, 60_000);

  it("is answered before its own deadline, not held past it", async () => {
    cluster = await lonelyMember();
    const result = await answered(unary(client!, "ClusterStatus", {}, 1_500));
    expect(result).toMatchObject({ ok: false, code: grpc.status.UNAVAILABLE });
    expect(result.ms).toBeLessThan(1_500);
  }, 60_000);
});
