/**
 * How long each synchronous step of a coordinator snapshot holds the event
 * loop: a state of N meetings (default 60,000) on three nodes, plus a 64-byte
 * checkpoint for every other meeting, encoded three times with
 * `snapshotSteps`. `npx tsx scripts/snapshot-steps.mts [meetings]`
 */
import { machineWithMeetings } from "./bench/meeting-state.js";

const meetings = Number(process.argv[2] ?? 60_000);
const { sm, apply } = machineWithMeetings(meetings);
const state = Buffer.alloc(64, 7);
for (let m = 0; m < meetings; m += 2) {
  const found = sm.queries.getRoute(`meeting-${m}`);
  if (!found.ok) throw new Error(`meeting-${m} has no route`);
  const { nodeId, epoch } = found.route;
  apply({ type: "saveCheckpoint", nodeId, generation: sm.queries.getNode(nodeId)!.generation, meetingId: `meeting-${m}`, epoch, sequence: 1, state });
}

// Each step is what the driver runs between two yields to the event loop.
for (let run = 1; run <= 3; run++) {
  const steps: number[] = [];
  const encoding = sm.snapshotSteps();
  let bytes: Uint8Array;
  for (;;) {
    const stepStarted = performance.now();
    const step = encoding.next();
    steps.push(performance.now() - stepStarted);
    if (step.done) {
      bytes = step.value;
      break;
    }
  }
  if (process.env.STEPS) console.log(steps.map((t, i) => [i, t.toFixed(0)]).filter(([, t]) => Number(t) >= 20).join(" "));
  console.log(`run ${run}: ${meetings} meetings, ${bytes.length} bytes, ${steps.length} steps, first ${steps[0]!.toFixed(1)} ms, longest ${Math.max(...steps).toFixed(1)} ms, total ${steps.reduce((a, b) => a + b, 0).toFixed(1)} ms`);
}
