/**
 * How long a member holds its event loop restoring the coordinator state
 * from a snapshot (at start, and when a leader sends one): N meetings
 * (default 250,000) on three nodes, encoded once, restored four times,
 * with the time in rebuilding the derived indexes, in checking the
 * invariants, and in garbage collection.
 *   npx tsx scripts/bench/state-restore.mts [meetings]
 */
import { PerformanceObserver } from "node:perf_hooks";
import { type Command, encodeCommand } from "../../src/coordinator/commands.js";
import { CoordinatorStateMachine } from "../../src/coordinator/coordinator-state-machine.js";
import { CoordinatorState } from "../../src/coordinator/state.js";

const meetings = Number(process.argv[2] ?? 250_000);
const sm = new CoordinatorStateMachine();
let index = 0;
const apply = (c: object): void => void sm.apply(encodeCommand({ nowMs: 1_000 + index, ...c } as Command), ++index);
for (let n = 0; n < 3; n++) apply({ type: "register", nodeId: `m${n}`, address: `127.0.0.1:${10_000 + n}`, capacity: 1_000_000, region: "", labels: [] });
for (let m = 0; m < meetings; m++) apply({ type: "createMeeting", meetingId: `meeting-${m}`, region: "", requiredLabels: [] });
const steps = sm.snapshotSteps();
let bytes: Uint8Array | undefined;
while (!bytes) {
  const step = steps.next();
  if (step.done) bytes = step.value;
}

const spent = { rebuildDerived: 0, checkInvariants: 0 };
for (const name of ["rebuildDerived", "checkInvariants"] as const) {
  const original = CoordinatorState.prototype[name];
  CoordinatorState.prototype[name] = function (this: CoordinatorState): void {
    const started = performance.now();
    original.call(this);
    spent[name] += performance.now() - started;
  };
}
let gcMs = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcMs += entry.duration;
}).observe({ entryTypes: ["gc"] });

for (let run = 1; run <= 4; run++) {
  spent.rebuildDerived = spent.checkInvariants = gcMs = 0;
  const started = performance.now();
  new CoordinatorStateMachine().restore(bytes);
  const ms = performance.now() - started;
  // GC entries are reported after the pause they measure.
  await new Promise((resolve) => setTimeout(resolve, 50));
  const f = (x: number): string => x.toFixed(0);
  console.log(`restore ${run}: ${meetings} meetings, ${bytes.length} bytes, ${f(ms)} ms (rebuilding the indexes ${f(spent.rebuildDerived)}, checking invariants ${f(spent.checkInvariants)}, GC ${f(gcMs)})`);
}
