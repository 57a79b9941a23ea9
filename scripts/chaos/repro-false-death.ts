/**
 * Reproduction, found by the chaos run (seed 7: live meeting servers were
 * declared dead right after leader pauses and zombie resumes): the leader's
 * failure detector lets a report about a node's OLD generation wipe out what
 * it heard from the node's CURRENT generation, and declares the live node
 * dead at once.
 *
 *   npx tsx scripts/chaos/repro-false-death.ts [--partitions auto|netns|proxy]
 *
 * FailureDetector.disconnected(nodeId, generation) stores
 * { generation, ... } for the node whatever the generation, so after a
 * report for generation g1 the node's entry no longer matches its current
 * generation g2; check() then takes it as never heard (heardAt 0) and,
 * once the leader has led for a lease, proposes DEAD on its next 50 ms
 * round, before the node's next heartbeat (every 500 ms) can put g2 back.
 * Such a report is what a member sends when it learns late that the old
 * process's watch stream closed: a member resuming from a pause or a
 * partition, or an agent whose old stream's cancel lands after it has
 * registered again. Here the report is sent directly (MemberAdmin.
 * NodeConnection, what followers forward to the leader):
 *   1. a meeting server m1 registers (generation g1), is killed -9 and
 *      restarted (generation g2), heartbeats normally for 2.5 s;
 *   2. NodeConnection{m1, g1, connected=false} reaches the leader;
 *   3. within milliseconds m1 (alive, generation g2) is declared DEAD, its
 *      meetings are revoked, it must register again.
 * Exit 1 when m1 is declared dead (reproduced).
 */
import { runRepro, sleep } from "./repro-harness.js";
import { type NodeInfoMessage, Rpc } from "./rpc.js";
import { loadCredentials } from "./security.js";
import { readServerLog } from "./server-log.js";

const STATE: Record<number, string> = { 1: "ALIVE", 2: "SUSPECT", 3: "DEAD", 4: "DRAINING" };

await runRepro(async ({ cluster, rpc, security, say }) => {
  const addresses = [...cluster.members.keys()].map((id) => cluster.memberAddress(id));
  for (let m = 0; m < 6; m++) await rpc.any("Coordinator", addresses, "GetRoute", { meeting_id: `r${m}`, create: true, region: "" }, 3000);
  const server = cluster.servers[0]!;
  const node = async (): Promise<NodeInfoMessage> =>
    (await rpc.any<{ nodes: NodeInfoMessage[] }>("Coordinator", addresses, "ListNodes", {}, 2000)).nodes.find((n) => n.node_id === server.nodeId)!;
  const g1 = (await node()).generation;
  await server.child!.kill9();
  cluster.startServer(server);
  await cluster.waitUntil("m1 registered again", Date.now() + 30_000, () => cluster.serverRegistered(server), server.child);
  await sleep(2500);
  const before = await node();
  say(`meeting server ${server.nodeId}: generation ${g1}, killed -9 and restarted: generation ${before.generation}, state ${STATE[before.state]}`);
  const leader = (await cluster.leader())!;
  const sentAt = Date.now();
  // NodeConnection is for members only: sent with the leader's own member certificate.
  const asMember = new Rpc(loadCredentials(security.member(leader, cluster.members.get(leader)!.slot)));
  await asMember.call("MemberAdmin", cluster.memberAddress(leader), "NodeConnection", { node_id: server.nodeId, generation: g1, connected: false }, 2000);
  asMember.close();
  say(`sent the leader ${leader} NodeConnection{${server.nodeId}, generation ${g1} (the old one), connected=false}`);
  let after = before;
  while (Date.now() - sentAt < 1500) {
    await sleep(50);
    after = await node();
    if (after.state === 3 || after.generation !== before.generation) break;
  }
  const rereg = server.logs.flatMap(readServerLog).filter((r) => r.k === "reregistered" && r.t >= sentAt);
  say(`${server.nodeId} ${Date.now() - sentAt} ms later: state ${STATE[after.state]}, generation ${after.generation}${rereg.length ? `; it registered again: ${rereg[0]!.k === "reregistered" ? rereg[0]!.reason.slice(0, 160) : ""}` : ""}`);
  if (after.state === 3 || after.generation !== before.generation) {
    say(`REPRODUCED: a report about generation ${g1} got the live generation ${before.generation} of ${server.nodeId} declared dead`);
    return true;
  } else {
    say(`not reproduced: ${server.nodeId} stayed ${STATE[after.state]}`);
  }
  return false;
});
