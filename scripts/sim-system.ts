/**
 * Runs the whole-product simulation (test/sim-system) over many seeds.
 *   npm run sim:system -- --seeds N [--seed S] [--members 3|5] [--trace]
 * Ends with the run's figures summed (faults, held calls, moves, ...) and "sim-system: <N> seeds, <virtual seconds> s simulated, <V> violations"
 * and exits non-zero on any violation, printing the command that replays it.
 */
import { runSystemSimulation } from "../test/sim-system/system-simulation.js";
import { parseSeedFlags } from "./seed-flags.js";

// Every placement checked against a scan of every node, as in the test suite (state-config.ts); read when each state is made.
process.env["CONVENE_CHECK_PLACEMENT_INDEX"] ??= "1";
const run = parseSeedFlags();
const count = run.count;

const started = Date.now();
let virtualMs = 0;
let violations = 0;
let failures = 0;
/** Each figure the runs report (faults injected, calls held, moves done, ...), summed. */
const totals: Record<string, number> = {};
for (let i = 0; i < count; i++) {
  const seed = run.first + i;
  const members = run.members(seed);
  const result = await runSystemSimulation({ seed, members, ...(run.trace ? { trace: (line: string) => console.log(line) } : {}) });
  virtualMs += result.virtualMs;
  for (const [k, v] of Object.entries(result.stats)) totals[k] = (totals[k] ?? 0) + v;
  if (result.violations.length > 0) {
    violations += result.violations.length;
    failures++;
    if (failures <= 5) {
      console.log(`seed ${seed} (${members} members) failed:`);
      for (const v of result.violations) console.log(`  ${v}`);
      console.log(`  replay: npm run sim:system -- --seed ${seed} --members ${members} --trace`);
    }
  }
  if (!run.quiet && (i + 1) % 50 === 0) console.log(`  ${i + 1} seeds, ${violations} violations, ${((Date.now() - started) / 1000).toFixed(0)} s`);
}
if (!run.quiet) console.log(`totals: ${Object.entries(totals).map(([k, v]) => `${k} ${Math.round(v)}`).join(", ")}`);
const seconds = ((Date.now() - started) / 1000).toFixed(1);
console.log(`sim-system: ${count} seeds, ${(virtualMs / 1000).toFixed(0)} s simulated, ${violations} violations (${seconds} s)`);
process.exit(violations > 0 ? 1 : 0);
