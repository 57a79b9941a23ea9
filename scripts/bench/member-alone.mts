/**
 * One coordinator member with no peers (the real RaftDriver, LevelStorage
 * and state machine, in this process; no gRPC): creates meetings 64 at a
 * time and prints, per window of 25,000, the CPU per create and the rate;
 * with GAPS=1 every event-loop gap of 50 ms or more, with SNAPSHOTS=1 every
 * snapshot; at the end RSS and the V8 heap. What grows with the state in
 * one member, apart from the network and the followers.
 *   npx tsx scripts/bench/member-alone.mts [meetings, default 250000]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Command, encodeCommand } from "../../src/coordinator/commands.js";
import { CoordinatorStateMachine } from "../../src/coordinator/coordinator-state-machine.js";
import { defaultConfig } from "../../src/raft/config.js";
import { SeededRandom } from "../../src/raft/random.js";
import { RaftDriver } from "../../src/raft-runtime/driver.js";
import { LevelStorage } from "../../src/raft-runtime/level-storage.js";
import { MemoryHub, MemoryTransport } from "../../src/raft-runtime/memory-transport.js";

const meetings = Number(process.argv[2] ?? 250_000);
const WINDOW = 25_000;
const dir = mkdtempSync(join(tmpdir(), "member-alone-"));
const storage = await LevelStorage.open(dir, { bootstrapVoters: ["n1"] });
const node = await RaftDriver.start({
  config: { ...defaultConfig("n1", new SeededRandom(1)), electionTick: 10, heartbeatTick: 1 },
  tickMs: 10,
  storage,
  transport: new MemoryTransport({ selfId: "n1", hub: new MemoryHub(), peers: [] }),
  stateMachine: new CoordinatorStateMachine(),
  peers: new Map([["n1", "x:1"]]),
  snapshotEvery: 10_000,
  requestTimeoutMs: 30_000,
});
while (!node.isLeader()) await new Promise((r) => setTimeout(r, 10));

const started = performance.now();
const at = () => `${((performance.now() - started) / 1000).toFixed(1)} s`;
let applied = 0;
node.on("applied", (i) => (applied = i));
if (process.env.SNAPSHOTS) node.on("snapshot", (s) => console.log(`snapshot ${JSON.stringify(s)} at ${at()}`));
let last = performance.now();
const gapWatch = setInterval(() => {
  const now = performance.now();
  if (process.env.GAPS && now - last >= 50) console.log(`event loop gap ${(now - last).toFixed(0)} ms at ${at()}, applied ${applied}`);
  last = now;
}, 5);

const propose = (c: object) => node.propose(encodeCommand({ nowMs: Date.now(), ...c } as Command));
async function inParallel(count: number, command: (i: number) => object): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: 64 }, async () => {
    for (let i = next++; i < count; i = next++) await propose(command(i));
  }));
}
await inParallel(3, (n) => ({ type: "register", nodeId: `node-${n}`, address: `127.0.0.1:${10_000 + n}`, capacity: 10_000_000, region: "", labels: [] }));
for (let from = 0; from < meetings; from += WINDOW) {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const n = Math.min(WINDOW, meetings - from);
  await inParallel(n, (m) => ({ type: "createMeeting", meetingId: `meeting-${from + m}`, region: "", requiredLabels: [] }));
  const cpu = process.cpuUsage(cpu0);
  console.log(`meetings ${from}-${from + n}: ${((cpu.user + cpu.system) / n).toFixed(1)} µs CPU per create, ${Math.round(n / ((performance.now() - t0) / 1000))}/s`);
}
clearInterval(gapWatch);
const m = process.memoryUsage();
const mib = (b: number) => Math.round(b / 2 ** 20);
console.log(`${meetings} meetings in ${at()}: RSS ${mib(m.rss)} MiB, V8 heap ${mib(m.heapUsed)} used / ${mib(m.heapTotal)} committed, buffers ${mib(m.arrayBuffers)} MiB`);
await node.stop();
rmSync(dir, { recursive: true, force: true });
