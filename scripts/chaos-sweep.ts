/**
 * Runs the chaos suite over a range of seeds, one after another, each in a
 * process of its own (scripts/chaos.ts), and sums up:
 *
 *   npm run chaos:sweep -- --seeds 1..40 --duration 90 [any other chaos flag]
 *
 * Ends with
 *   chaos sweep: <n> seeds, <f> faults, <ops> ops, <lost> lost, <v> violations
 * and, for each seed that lost a write, found a violation or did not finish,
 * the command that replays it. Exit code 0 only when every seed was clean.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

interface SeedResult {
  readonly seed: number;
  readonly faults: number;
  readonly ops: number;
  readonly lost: number;
  readonly violations: number;
  /** The exit code, or the reason the run did not finish. */
  readonly exit: string;
  /** The run's findings (LOST, VIOLATION lines), for the summary. */
  readonly findings: string[];
}

const SUMMARY = /^chaos: (\d+) faults, (\d+) ops, (\d+) lost, (\d+) violations$/;

function usage(message: string): never {
  process.stderr.write(`chaos:sweep: ${message}\nusage: npm run chaos:sweep -- --seeds A..B [--duration S] [other chaos flags]\n`);
  process.exit(2);
}

function parseSeeds(value: string | undefined): number[] {
  const m = /^(\d{1,9})\.\.(\d{1,9})$/.exec(value ?? "");
  if (!m) usage(`--seeds must be a range FIRST..LAST of whole numbers (e.g. 1..40), got ${JSON.stringify(value ?? "")}`);
  const [first, last] = [Number(m[1]), Number(m[2])];
  if (last < first) usage(`--seeds must not end before it starts, got ${first}..${last}`);
  if (last - first >= 10_000) usage(`--seeds may span at most 10,000 seeds, got ${last - first + 1}`);
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

function runSeed(seed: number, passThrough: readonly string[]): Promise<SeedResult> {
  const script = fileURLToPath(new URL("./chaos.ts", import.meta.url));
  const child = spawn(process.execPath, ["--import", "tsx", script, "--seed", String(seed), ...passThrough], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (b: Buffer) => {
    out += b.toString();
    process.stdout.write(b);
  });
  child.stderr.on("data", (b: Buffer) => process.stderr.write(b));
  return new Promise((resolve) => {
    child.on("close", (code, signal) => {
      const lines = out.split("\n");
      const findings = lines.filter((l) => /^\s*(LOST|VIOLATION)\b/.test(l.trim())).map((l) => l.trim());
      const summary = lines.map((l) => SUMMARY.exec(l.trim())).find((m) => m !== null);
      const exit = signal ? `killed by ${signal}` : `exit ${code}`;
      if (!summary) {
        resolve({ seed, faults: 0, ops: 0, lost: 0, violations: 1, exit: `${exit}, no summary line`, findings });
        return;
      }
      const [faults, ops, lost, violations] = summary.slice(1).map(Number) as [number, number, number, number];
      resolve({ seed, faults, ops, lost, violations, exit, findings });
    });
  });
}

const args = process.argv.slice(2);
const at = args.indexOf("--seeds");
if (at === -1) usage("--seeds is required");
const seeds = parseSeeds(args[at + 1]);
const passThrough = args.filter((_, i) => i !== at && i !== at + 1);
if (passThrough.includes("--seed")) usage("give the seeds with --seeds A..B, not --seed");

const results: SeedResult[] = [];
const started = Date.now();
for (const seed of seeds) {
  process.stdout.write(`\n=== chaos sweep: seed ${seed} (${results.length + 1} of ${seeds.length}) ===\n`);
  const r = await runSeed(seed, passThrough);
  results.push(r);
  process.stdout.write(`=== seed ${seed}: ${r.faults} faults, ${r.ops} ops, ${r.lost} lost, ${r.violations} violations (${r.exit}) ===\n`);
}

const sum = (f: (r: SeedResult) => number) => results.reduce((a, r) => a + f(r), 0);
const failing = results.filter((r) => r.lost > 0 || r.violations > 0 || r.exit !== "exit 0");
process.stdout.write(`\nchaos sweep over ${Math.round((Date.now() - started) / 1000)} s\n`);
for (const r of failing) {
  process.stdout.write(`seed ${r.seed}: ${r.lost} lost, ${r.violations} violations (${r.exit}); replay: npm run chaos -- --seed ${r.seed} ${passThrough.join(" ")}\n`);
  for (const f of r.findings.slice(0, 10)) process.stdout.write(`  ${f}\n`);
}
process.stdout.write(
  `chaos sweep: ${results.length} seeds, ${sum((r) => r.faults)} faults, ${sum((r) => r.ops)} ops, ${sum((r) => r.lost)} lost, ${sum((r) => r.violations)} violations\n`,
);
process.exit(failing.length === 0 ? 0 : 1);
