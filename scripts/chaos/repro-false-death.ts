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
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { silenceIpServernameWarning } from "../../src/security/servername-warning.js";
import { ChaosCluster } from "./cluster.js";
import { type MemberNetwork, openNetwork, runBasePort } from "./network.js";
import { type PartitionChoice, chaosDefaults } from "./options.js";
import { ProcessTable } from "./processes.js";
import { type NodeInfoMessage, Rpc } from "./rpc.js";
import { loadCredentials, runSecurity } from "./security.js";
import { readServerLog } from "./server-log.js";

// Members are dialed by IP address over TLS: Node's warning about IP server names says nothing here.
silenceIpServernameWarning();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (line: string): void => void process.stdout.write(`${line}\n`);
const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};

const STATE: Record<number, string> = { 1: "ALIVE", 2: "SUSPECT", 3: "DEAD", 4: "DRAINING" };
const options = { ...chaosDefaults, gateways: 0, servers: 1, partitions: arg("--partitions", "auto") as PartitionChoice };
const runDir = mkdtempSync(join(tmpdir(), "convene-repro-"));
const processes = new ProcessTable(fileURLToPath(new URL("../../", import.meta.url)));
/** Closed at the end; made once the security is. */
let openRpc: Rpc | undefined;
let network: MemberNetwork | undefined;
const cleanup = (): void => {
  processes.killAllSync();
  network?.closeSync();
  rmSync(runDir, { recursive: true, force: true });
};
process.on("exit", cleanup);
process.on("SIGINT", () => process.exit(130));
process.on("SIGTERM", () => process.exit(143));

let code = 0;
try {
  const base = runBasePort();
  network = await openNetwork(options.partitions, { slots: options.members + 1, basePort: base, log: say });
  const security = runSecurity(runDir, network, options);
  const rpc = new Rpc(loadCredentials(security.operator()));
  openRpc = rpc;
  const cluster = new ChaosCluster(options, network, processes, rpc, runDir, base + 250, security);
  await cluster.start();
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
  say(`partitions: ${network.mechanism}; meeting server ${server.nodeId}: generation ${g1}, killed -9 and restarted: generation ${before.generation}, state ${STATE[before.state]}`);
  const leader = (await cluster.leader())!;
  const sentAt = Date.now();
  // NodeConnection is for members only: sent with a member's certificate and token.
  const asMember = new Rpc(loadCredentials(security.member(cluster.members.get(leader)!.slot)));
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
    code = 1;
  } else {
    say(`not reproduced: ${server.nodeId} stayed ${STATE[after.state]}`);
  }
} catch (err) {
  say(`repro failed to run: ${(err as Error).message}`);
  code = 3;
} finally {
  await processes.killAll();
  openRpc?.close();
  await network?.close();
  cleanup();
}
process.exit(code);
