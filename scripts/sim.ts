/**
 * Runs the deterministic simulation of the real Raft driver over many seeds.
 *   npm run sim -- --seeds N [--seed S] [--members 3|5] [--steps T] [--trace]
 * Ends with "sim: <N> seeds, <steps> steps, <V> violations" and the share of
 * ticks with two members believing they lead; exits non-zero on any
 * violation, printing the command that replays it. --trace prints every
 * member start, crash, pause, leadership and apply of one seed.
 */
import { runSimulation } from "../test/sim/simulation.js";
import { parseSeedFlags } from "./seed-flags.js";

const run = parseSeedFlags(["steps"]);
const steps = run.wholeNumber("steps", 600);

const started = Date.now();
let totalSteps = 0;
let violations = 0;
let failures = 0;
let overlap = 0;
const count = run.count;
for (let i = 0; i < count; i++) {
  const seed = run.first + i;
  const members = run.members(seed);
  const result = await runSimulation({ seed, members, steps, ...(run.trace ? { trace: (line: string) => console.log(line) } : {}) });
  totalSteps += result.steps;
  overlap += result.overlapTicks;
  if (result.violations.length > 0) {
    violations += result.violations.length;
    failures++;
    if (failures <= 5) {
      console.log(`seed ${seed} (${members} members) failed:`);
      for (const v of result.violations) console.log(`  ${v}`);
      console.log(`  replay: npm run sim -- --seed ${seed} --members ${members} --steps ${steps}`);
    }
  }
  if (!run.quiet && (i + 1) % 1000 === 0) {
    console.log(`  ${i + 1} seeds, ${violations} violations, ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
}
const seconds = ((Date.now() - started) / 1000).toFixed(1);
console.log(`two members believing they lead: ${overlap} of ${totalSteps} ticks (${((100 * overlap) / Math.max(1, totalSteps)).toFixed(2)}%)`);
console.log(`sim: ${count} seeds, ${totalSteps} steps, ${violations} violations (${seconds} s)`);
process.exit(violations > 0 ? 1 : 0);
