/**
 * Runs one `convene` command line and turns each kind of failure into a
 * line on stderr and an exit code (errors.ts): 1 when the cluster or a
 * started server failed, 2 for a bad command line or config file. Called
 * by src/cli.ts with the process's arguments, and by tests in-process with
 * an output sink.
 */
import { CommanderError } from "commander";
import { CommandFailed, UsageError } from "./errors.js";
import { createProgram } from "./program.js";

export interface CliOutput {
  readonly writeOut: (text: string) => void;
  readonly writeErr: (text: string) => void;
}

const processOutput: CliOutput = {
  writeOut: (text) => process.stdout.write(text),
  writeErr: (text) => process.stderr.write(text),
};

/**
 * Parses and runs `args` (the words after `convene`). Resolves with the exit
 * code once the command's action is done (a server command is then running,
 * and resolves with 0); anything else thrown is a bug and rejects.
 */
export async function runCli(args: readonly string[], output: CliOutput = processOutput): Promise<number> {
  try {
    await createProgram(output).parseAsync([...args], { from: "user" });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has printed the message (or the help / version) already.
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof UsageError || err instanceof CommandFailed) {
      output.writeErr(`convene ${err.command}: ${err.message}\n`);
      return err.exitCode;
    }
    throw err;
  }
}
