// One member (RaftDriver + LevelStorage + the coordinator state machine, no peers) holding 1,000 nodes and
// 100,000 meetings with 1 KiB checkpoints; prints its memory. `node --expose-gc --import tsx scripts/member-memory.mts`
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { encodeCommand, type Command } from "../src/coordinator/commands.js";
import { CoordinatorStateMachine } from "../src/coordinator/coordinator-state-machine.js";
import { defaultConfig } from "../src/raft/config.js";
import { LevelStorage } from "../src/raft-runtime/level-storage.js";
import { MemoryHub, MemoryTransport } from "../src/raft-runtime/memory-transport.js";
import { RaftDriver } from "../src/raft-runtime/driver.js";
import { SeededRandom } from "../src/raft/random.js";
const mb = () => { const m = process.memoryUsage(); return `rss ${(m.rss/2**20)|0} heap ${(m.heapUsed/2**20)|0}/${(m.heapTotal/2**20)|0} ext ${(m.external/2**20)|0} ab ${(m.arrayBuffers/2**20)|0}`; };
const dir = mkdtempSync(join(tmpdir(), "memnode-"));
const storage = await LevelStorage.open(dir, { bootstrapVoters: ["n1"] });
const sm = new CoordinatorStateMachine();
const node = await RaftDriver.start({
  config: { ...defaultConfig("n1", new SeededRandom(1)), electionTick: 10, heartbeatTick: 1 }, tickMs: 10, storage,
  transport: new MemoryTransport({ selfId: "n1", hub: new MemoryHub(), peers: [] }), stateMachine: sm,
  peers: new Map([["n1", "x:1"]]), snapshotEvery: 10000, requestTimeoutMs: 30000,
});
while (!node.isLeader()) await new Promise((r) => setTimeout(r, 10));
const propose = (c: any) => node.propose(encodeCommand({ nowMs: Date.now(), ...c } as Command));
async function many(n: number, f: (i: number) => any) { let next = 0; await Promise.all(Array.from({ length: 64 }, async () => { for (let i = next++; i < n; i = next++) await propose(f(i)); })); }
let t = Date.now();
await many(1000, (n) => ({ type: "register", nodeId: `node-${n}`, address: `127.0.0.1:${10000 + n}`, capacity: 200, region: "", labels: [] }));
await many(100000, (m) => ({ type: "createMeeting", meetingId: `meeting-${m}`, region: "", requiredLabels: [] }));
console.log("created", Date.now() - t, "ms", mb());
const states = Array.from({ length: 64 }, () => randomBytes(1024));
t = Date.now();
await many(100000, (m) => { const r = sm.queries.getRoute(`meeting-${m}`) as any; return { type: "saveCheckpoint", nodeId: r.route.nodeId, generation: sm.queries.getNode(r.route.nodeId)!.generation, meetingId: `meeting-${m}`, epoch: r.route.epoch, sequence: 1, state: states[m % 64] }; });
console.log("saved", Date.now() - t, "ms", mb(), "snapshotIndex", node.status().snapshotIndex, "applied", node.status().applied);
global.gc?.(); console.log("after gc", mb());
for (let k = 1; k <= 4; k++) {
  await new Promise((r) => setTimeout(r, 1500));
  global.gc?.(); console.log(`after ${1.5 * k}s + gc`, mb(), "snapshotIndex", node.status().snapshotIndex);
}
await node.stop();
