#!/usr/bin/env node
/**
 * The convene command line: `convene --help` lists the commands; the tree
 * is built in src/cli/program.ts. This file only runs it and turns each
 * kind of failure into stderr text and an exit code (src/cli/errors.ts):
 * 1 when the cluster or a started server failed, 2 for a bad command line
 * or config file.
 */
import { CommanderError } from "commander";
import { CommandFailed, EXIT_USAGE, UsageError } from "./cli/errors.js";
import { createProgram } from "./cli/program.js";
import { silenceIpServernameWarning } from "./security/servername-warning.js";

async function main(): Promise<void> {
  silenceIpServernameWarning();
  try {
    await createProgram().parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has printed the message (or the help / version) already.
      process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE;
      return;
    }
    if (err instanceof UsageError || err instanceof CommandFailed) {
      console.error(`convene ${err.command}: ${err.message}`);
      process.exitCode = err.exitCode;
      return;
    }
    throw err;
  }
}

main().catch((err: unknown) => {
  // A bug, not an operator's mistake: the stack helps.
  console.error("convene: unexpected error:", err);
  process.exit(1);
});
