/**
 * The test suite, run again and again while a CPU hog takes one core: a
 * test that passes only on a quiet machine is a flaky test, and a flaky
 * test is a bug (in the test or in the product).
 *
 *   npm run test:stress -- [--runs 5] [--no-hog] [vitest arguments, e.g. test/gateway.test.ts]
 *
 * With no vitest arguments each run is the whole suite (`vitest run`, then
 * the chaos run of `npm run test:chaos`). Prints one line per run and ends
 * with
 *   stress: <runs> runs, <failed> failed
 * and the failing tests of each failed run, with the file holding that run's
 * whole output. Exit code 0 only when none failed.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

function usage(message: string): never {
  process.stderr.write(`test:stress: ${message}\nusage: npm run test:stress -- [--runs N] [--no-hog] [vitest arguments]\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
let runs = 5;
let hog = true;
const vitestArgs: string[] = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === "--runs") {
    const n = Number(args[++i]);
    if (!Number.isInteger(n) || n < 1 || n > 1000) usage(`--runs must be a whole number from 1 to 1000, got ${JSON.stringify(args[i] ?? "")}`);
    runs = n;
  } else if (a === "--no-hog") hog = false;
  else vitestArgs.push(a);
}

/** Busy-loops on one core until killed. */
function startHog(): ChildProcess {
  return spawn(process.execPath, ["-e", "for (;;) { Math.sqrt(Math.random()); }"], { stdio: "ignore" });
}

function run(command: string, commandArgs: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, commandArgs, { stdio: ["ignore", "pipe", "pipe"], env });
    let output = "";
    const take = (b: Buffer): void => {
      output += b.toString();
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    child.on("close", (code) => resolve({ ok: code === 0, output }));
  });
}

/** The failing test names vitest printed ("FAIL  file > suite > test"), without colours. */
function failures(output: string): string[] {
  const plain = output.replace(/\u001b\[[0-9;]*m/g, "");
  return [...new Set(plain.split("\n").filter((l) => /^\s*FAIL\s/.test(l)).map((l) => l.trim()))];
}

const hogProcess = hog ? startHog() : undefined;
const stopHog = (): void => {
  hogProcess?.kill("SIGKILL");
};
process.on("exit", stopHog);
process.on("SIGINT", () => process.exit(130));

const failed: { run: number; tests: string[] }[] = [];
for (let r = 1; r <= runs; r++) {
  const started = Date.now();
  const steps = vitestArgs.length > 0 ? [["npx", ["vitest", "run", ...vitestArgs]]] : [["npx", ["vitest", "run"]], ["npm", ["run", "test:chaos", "--silent"]]];
  let ok = true;
  const tests: string[] = [];
  for (const [command, commandArgs] of steps as [string, string[]][]) {
    const result = await run(command, commandArgs);
    if (!result.ok) {
      ok = false;
      // The whole output, for the failure's cause: the summary line names the test only.
      const saved = join(tmpdir(), `convene-stress-run-${r}-${command}.log`);
      writeFileSync(saved, result.output);
      tests.push(`output: ${saved}`);
      const found = failures(result.output);
      tests.push(...(found.length > 0 ? found : [`${command} ${commandArgs.join(" ")} failed: ${result.output.split("\n").slice(-5).join(" | ")}`]));
    }
  }
  if (!ok) failed.push({ run: r, tests });
  process.stdout.write(`run ${r}: ${ok ? "passed" : "FAILED"} in ${Math.round((Date.now() - started) / 1000)} s${hog ? " (one core taken by a busy loop)" : ""}\n`);
  for (const t of tests) process.stdout.write(`  ${t}\n`);
}
stopHog();
process.stdout.write(`stress: ${runs} runs, ${failed.length} failed\n`);
process.exit(failed.length === 0 ? 0 : 1);
