/**
 * Runs the deterministic simulation of the real Raft driver over many seeds.
 *   npm run sim -- --seeds N [--seed S] [--members 3|5] [--steps T] [--trace]
 * Ends with "sim: <N> seeds, <steps> steps, <V> violations" and the share of
 * ticks with two members believing they lead; exits non-zero on any
 * violation, printing the command that replays it. --trace prints every
 * member start, crash, pause, leadership and apply of one seed.
 */
import { parseArgs } from "node:util";
import { runSimulation } from "../test/sim/simulation.js";

const { values } = parseArgs({
  options: {
    seeds: { type: "string", default: "100" },
    seed: { type: "string" },
    members: { type: "string" },
    steps: { type: "string", default: "600" },
    quiet: { type: "boolean", default: false },
    trace: { type: "boolean", default: false },
  },
});

function positiveInt(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) {
    console.error(`--${name} must be a whole number of 0 or more, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}

const seeds = positiveInt("seeds", values.seeds)!;
const first = positiveInt("seed", values.seed);
const steps = positiveInt("steps", values.steps)!;
const membersArg = positiveInt("members", values.members);
if (membersArg !== undefined && membersArg !== 3 && membersArg !== 5) {
  console.error(`--members must be 3 or 5, got ${membersArg}`);
  process.exit(2);
}

const started = Date.now();
let totalSteps = 0;
let violations = 0;
let failures = 0;
let overlap = 0;
const count = first !== undefined && values.seeds === "100" ? 1 : seeds;
for (let i = 0; i < count; i++) {
  const seed = (first ?? 1) + i;
  // Without --members, alternate 3 and 5 so both sizes get every other seed.
  const members = membersArg ?? (seed % 2 === 0 ? 5 : 3);
  const result = await runSimulation({ seed, members, steps, ...(values.trace ? { trace: (line: string) => console.log(line) } : {}) });
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
  if (!values.quiet && (i + 1) % 1000 === 0) {
    console.log(`  ${i + 1} seeds, ${violations} violations, ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
}
const seconds = ((Date.now() - started) / 1000).toFixed(1);
console.log(`two members believing they lead: ${overlap} of ${totalSteps} ticks (${((100 * overlap) / Math.max(1, totalSteps)).toFixed(2)}%)`);
console.log(`sim: ${count} seeds, ${totalSteps} steps, ${violations} violations (${seconds} s)`);
process.exit(violations > 0 ? 1 : 0);
