/**
 * The V8 heap the coordinator state itself takes per meeting: a state
 * machine alone (no driver, log or route log) fed 200,000 creates on three
 * nodes, the heap measured after a forced collection every 50,000.
 *   node --expose-gc --import tsx scripts/bench/state-heap.mts
 */
import { type Command, encodeCommand } from "../../src/coordinator/commands.js";
import { CoordinatorStateMachine } from "../../src/coordinator/coordinator-state-machine.js";

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with node --expose-gc");
const sm = new CoordinatorStateMachine();
let index = 0;
const apply = (c: object): void => void sm.apply(encodeCommand({ nowMs: 1_000 + index, ...c } as Command), ++index);
const heapMiB = (): number => {
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
};
for (let n = 0; n < 3; n++) apply({ type: "register", nodeId: `m${n}`, address: `127.0.0.1:${10_000 + n}`, capacity: 1_000_000, region: "", labels: [] });
let before = heapMiB();
for (let k = 1; k <= 4; k++) {
  for (let m = (k - 1) * 50_000; m < k * 50_000; m++) apply({ type: "createMeeting", meetingId: `meeting-${m}`, region: "", requiredLabels: [] });
  const now = heapMiB();
  console.log(`${k * 50_000} meetings: heap ${now.toFixed(1)} MiB, ${Math.round(((now - before) * 2 ** 20) / 50_000)} bytes per meeting added`);
  before = now;
}
