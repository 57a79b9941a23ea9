/**
 * The coordinator's replicated state at the size "ten times the scale"
 * asks for (BENCHMARKS.md, scale): 10,000 nodes and N meetings (default
 * 1,000,000), each with its own 1 KiB checkpoint, in one state machine
 * with no driver, log or network. Prints the memory the state itself
 * takes (V8 heap, buffers, RSS), and a snapshot's size and the time to
 * encode it and to restore a state from it: what a member holds and what a
 * restarted member loads, before any Raft or gRPC cost.
 *   node --expose-gc --max-old-space-size=8192 --import tsx scripts/bench/state-at-scale.mts [N]
 */
import { randomBytes } from "node:crypto";
import { type Command, encodeCommand } from "../../src/coordinator/commands.js";
import { CoordinatorStateMachine } from "../../src/coordinator/coordinator-state-machine.js";
const N = Number(process.argv[2] ?? 1_000_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with node --expose-gc");
const sm = new CoordinatorStateMachine();
let index = 0;
const apply = (c: object) => sm.apply(encodeCommand({ nowMs: 1_000 + index, ...c } as Command), ++index);
const mem = (label: string) => {
  gc();
  const m = process.memoryUsage();
  console.log(`${label}: heap ${(m.heapUsed / 2 ** 20).toFixed(0)} MiB, buffers ${(m.arrayBuffers / 2 ** 20).toFixed(0)} MiB, rss ${(m.rss / 2 ** 20).toFixed(0)} MiB`);
};
// Every node registered first: each create places among all 10,000 (through the state's placement index).
const register = (n: number) => apply({ type: "register", nodeId: `s${n}`, address: `127.0.0.1:${20_000 + (n % 40_000)}`, capacity: 2000, region: "", labels: [] });
for (let n = 0; n < 10_000; n++) register(n);
let t = performance.now();
for (let m = 0; m < N; m++) {
  apply({ type: "createMeeting", meetingId: `room-${m}`, region: "", requiredLabels: [] });
  if ((m + 1) % 200_000 === 0) console.error(`created ${m + 1} ${((performance.now() - t) / 1000).toFixed(0)} s`);
}
console.log(`creates applied in ${((performance.now() - t) / 1000).toFixed(1)} s`);
mem(`${N} meetings`);
t = performance.now();
const gens = new Map(sm.queries.listNodes().map((n) => [n.nodeId, n.generation]));
for (let m = 0; m < N; m++) {
  const r = sm.queries.getRoute(`room-${m}`);
  if (!r.ok) throw new Error(`room-${m}`);
  apply({ type: "saveCheckpoint", nodeId: r.route.nodeId, generation: gens.get(r.route.nodeId), meetingId: `room-${m}`, epoch: r.route.epoch, sequence: 1, state: randomBytes(1024) });
}
console.log(`saves applied in ${((performance.now() - t) / 1000).toFixed(1)} s; checkpoints ${sm.queries.counts().checkpoints}`);
mem(`${N} meetings with 1 KiB checkpoints`);
t = performance.now();
const snap = sm.snapshot();
console.log(`snapshot ${(snap.length / 2 ** 20).toFixed(0)} MiB encoded in ${((performance.now() - t) / 1000).toFixed(2)} s`);
mem("with the snapshot held");
const sm2 = new CoordinatorStateMachine();
t = performance.now();
sm2.restore(snap);
console.log(`restored in ${((performance.now() - t) / 1000).toFixed(2)} s; meetings ${sm2.queries.counts().meetings}`);
