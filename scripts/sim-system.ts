/**
 * Runs the whole-product simulation (test/sim-system) over many seeds.
 *   npm run sim:system -- --seeds N [--seed S] [--members 3|5] [--trace]
 * Ends with "sim-system: <N> seeds, <virtual seconds> s simulated, <V> violations"
 * and exits non-zero on any violation, printing the command that replays it.
 */
import { parseArgs } from "node:util";
import { runSystemSimulation } from "../test/sim-system/system-simulation.js";

const { values } = parseArgs({
  options: {
    seeds: { type: "string" },
    seed: { type: "string" },
    members: { type: "string" },
    quiet: { type: "boolean", default: false },
    trace: { type: "boolean", default: false },
  },
});

function wholeNumber(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) {
    console.error(`--${name} must be a whole number of 0 or more, got ${JSON.stringify(raw.slice(0, 40))}`);
    process.exit(2);
  }
  return n;
}

const first = wholeNumber("seed", values.seed) ?? 1;
const count = wholeNumber("seeds", values.seeds) ?? (values.seed !== undefined ? 1 : 100);
const membersArg = wholeNumber("members", values.members);
if (membersArg !== undefined && membersArg !== 3 && membersArg !== 5) {
  console.error(`--members must be 3 or 5, got ${membersArg}`);
  process.exit(2);
}

const started = Date.now();
let virtualMs = 0;
let violations = 0;
let failures = 0;
for (let i = 0; i < count; i++) {
  const seed = first + i;
  // Without --members, alternate 3 and 5 so both sizes get every other seed.
  const members = membersArg ?? (seed % 2 === 0 ? 5 : 3);
  const result = await runSystemSimulation({ seed, members, ...(values.trace ? { trace: (line: string) => console.log(line) } : {}) });
  virtualMs += result.virtualMs;
  if (result.violations.length > 0) {
    violations += result.violations.length;
    failures++;
    if (failures <= 5) {
      console.log(`seed ${seed} (${members} members) failed:`);
      for (const v of result.violations) console.log(`  ${v}`);
      console.log(`  replay: npm run sim:system -- --seed ${seed} --members ${members} --trace`);
    }
  }
  if (!values.quiet && (i + 1) % 50 === 0) console.log(`  ${i + 1} seeds, ${violations} violations, ${((Date.now() - started) / 1000).toFixed(0)} s`);
}
const seconds = ((Date.now() - started) / 1000).toFixed(1);
console.log(`sim-system: ${count} seeds, ${(virtualMs / 1000).toFixed(0)} s simulated, ${violations} violations (${seconds} s)`);
process.exit(violations > 0 ? 1 : 0);
