/**
 * Reproduction, found by the chaos run (seed 7): a write a client gave up
 * on is applied seconds later, after the client did something else.
 *
 *   npx tsx scripts/chaos/repro-late-forward.ts [--partitions auto|netns|proxy]
 *
 * 1. Three members and one meeting server. A follower F forwards a
 *    GetRoute(create) once, so its channel to the leader L is open.
 * 2. The link F <-> L is cut (F still believes L leads for a while).
 * 3. GetRoute(create=true, "late") to F with a 1 s deadline: F forwards it
 *    to L with its own 5 s deadline (requestTimeoutMs), not the caller's;
 *    the request sits in the cut link. The caller gets DEADLINE_EXCEEDED.
 * 4. The caller creates "late" through L, then ends it (EndMeeting OK);
 *    GetRoute(create=false) says NOT_FOUND.
 * 5. The link heals within F's 5 s: the stale request reaches L, which
 *    creates "late" again. GetRoute(create=false) now routes the ended
 *    meeting, at epoch 1.
 * Exit 1 when the ended meeting comes back (reproduced), 0 when it stays ended.
 */
import { runRepro, sleep } from "./repro-harness.js";
import { type RouteMessage, Rpc, RpcError, statusName } from "./rpc.js";

async function route(rpc: Rpc, address: string, meetingId: string, create: boolean, timeoutMs: number): Promise<string> {
  try {
    const r = await rpc.call<RouteMessage>("Coordinator", address, "GetRoute", { meeting_id: meetingId, create, region: "" }, timeoutMs);
    return `${r.node_id} epoch ${r.epoch}${r.created ? " (created)" : ""}`;
  } catch (err) {
    return err instanceof RpcError ? statusName(err.status) : String(err);
  }
}

await runRepro(async ({ cluster, rpc, network, say }) => {
  const leader = (await cluster.leader())!;
  const follower = [...cluster.members.keys()].find((id) => id !== leader)!;
  const [L, F] = [cluster.memberAddress(leader), cluster.memberAddress(follower)];
  say(`leader ${leader} (${L}), follower ${follower} (${F})`);
  say(`warm-up GetRoute(create) through ${follower}: ${await route(rpc, F, "warm-up", true, 3000)}`);

  await network.cutLink(cluster.members.get(leader)!.slot, cluster.members.get(follower)!.slot);
  const cutAt = Date.now();
  say(`cut ${leader} <-> ${follower}`);
  say(`GetRoute(create=true, "late") through ${follower}, deadline 1 s: ${await route(rpc, F, "late", true, 1000)}`);
  say(`GetRoute(create=true, "late") through ${leader}: ${await route(rpc, L, "late", true, 3000)}`);
  try {
    await rpc.call("Coordinator", L, "EndMeeting", { meeting_id: "late" }, 3000);
    say(`EndMeeting("late") through ${leader}: OK`);
  } catch (err) {
    say(`EndMeeting("late") through ${leader}: ${(err as Error).message}`);
  }
  say(`GetRoute(create=false, "late") through ${leader}: ${await route(rpc, L, "late", false, 3000)}`);
  await sleep(Math.max(0, cutAt + 3000 - Date.now()));
  await network.healAll();
  say(`healed ${leader} <-> ${follower} ${((Date.now() - cutAt) / 1000).toFixed(1)} s after the cut`);
  await sleep(3000);
  const after = await route(rpc, L, "late", false, 3000);
  say(`GetRoute(create=false, "late") through ${leader}, 3 s later: ${after}`);
  if (after.includes("epoch")) {
    say(`REPRODUCED: the ended meeting "late" is routed again (${after}), created by the request its caller abandoned at its 1 s deadline`);
    return true;
  } else {
    say("not reproduced: the ended meeting stayed ended");
  }
  return false;
});
