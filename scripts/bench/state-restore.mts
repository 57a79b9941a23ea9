/**
 * How long a member holds its event loop restoring the coordinator state
 * from a snapshot (at start, and when a leader sends one): N meetings
 * (default 250,000) on three nodes, encoded once, restored four times,
 * with the time in rebuilding the derived indexes, in checking the
 * invariants, and in garbage collection.
 *   npx tsx scripts/bench/state-restore.mts [meetings]
 */
import { PerformanceObserver } from "node:perf_hooks";
import { CoordinatorStateMachine } from "../../src/coordinator/coordinator-state-machine.js";
import { CoordinatorState } from "../../src/coordinator/state.js";
import { machineWithMeetings } from "./meeting-state.js";

const meetings = Number(process.argv[2] ?? 250_000);
const { sm } = machineWithMeetings(meetings);
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
