#!/usr/bin/env node
/**
 * The convene command line: `convene --help` lists the commands; the tree
 * is built in src/cli/program.ts and run by src/cli/run.ts, which prints
 * each failure and decides the exit code: 1 when the cluster or a started
 * server failed, 2 for a bad command line or config file.
 */
import { runCli } from "./cli/run.js";
import { silenceIpServernameWarning } from "./security/servername-warning.js";

silenceIpServernameWarning();
runCli(process.argv.slice(2)).then(
  (code) => {
    if (code !== 0) process.exitCode = code;
  },
  (err: unknown) => {
    // A bug, not an operator's mistake: the stack helps.
    console.error("convene: unexpected error:", err);
    process.exit(1);
  },
);
