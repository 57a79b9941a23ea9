/**
 * The `convene` command tree (commander). run.ts builds it with
 * createProgram(), parses the arguments and maps failures to exit codes
 * (errors.ts). Unknown commands and options are commander's own usage
 * errors; a bad value is refused by its parser (arguments.ts), naming the
 * flag; either way the program exits 2.
 */
import { readFileSync } from "node:fs";
import { Command, type OutputConfiguration } from "commander";
import { addAppCommands } from "./app-commands.js";
import { InvalidValue } from "./arguments.js";
import { addCertsCommand } from "./certs-command.js";
import { addClusterCommands } from "./cluster-commands.js";
import { UsageError } from "./errors.js";
import { addMemberCommands } from "./member-commands.js";
import { commandPath } from "./operator.js";
import { addProcessCommands } from "./process-commands.js";
import { addSnapshotCommands } from "./snapshot-commands.js";

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: string };
  return pkg.version ?? "unknown";
}

const helpFooter = `
Operator commands ask any coordinator member (followers forward to the
leader), trying each of --coordinators in turn while one is unreachable.
--coordinators defaults to $CONVENE_COORDINATORS, else
127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003. Against a TLS cluster add
--ca FILE and a token (--token or $CONVENE_TOKEN); \`convene certs\` makes
both for a test cluster (README.md, "Security").

Exit status: 0 done; 1 the cluster refused or could not answer
("convene <command>: <STATUS>: <details>" on stderr); 2 bad command line
or config file.

Reference: docs/api.md (every API, the sidecar, this command line);
how it is built: docs/architecture.md.

Examples:
  convene start
  convene status
  convene route room-1 --create
  convene drain m1 --migrate
  convene drain m1 --deadline 10m && convene undrain m1
  convene move room-1 --to m2
  convene rebalance --max-moves 20 --rate 2/s
  convene events --follow
  convene members add n4 127.0.0.1:7004 && convene members promote n4
  convene snapshot save backup.db && convene snapshot status backup.db
  convene nodes --json | jq '.nodes[].state'
  convene certs --out ./certs && CONVENE_TOKEN=$(cat certs/operator.token) convene status --ca certs/ca.crt`;

/**
 * Every parser of `command` and its subcommands, wrapped so that a value
 * breaking its rule (InvalidValue) becomes a UsageError of that command
 * whose message starts with the flag (`--node must be ...`) or the
 * argument (`MEETING must be ...`).
 */
function nameParserFailures(command: Command): void {
  type Parse = <T>(value: string, previous: T) => T;
  const wrap = (parse: Parse, label: string): Parse => (value, previous) => {
    try {
      return parse(value, previous);
    } catch (err) {
      if (err instanceof InvalidValue) throw new UsageError(commandPath(command), `${label} ${err.message}`, { cause: err });
      throw err;
    }
  };
  for (const option of command.options) {
    if (option.parseArg) option.parseArg = wrap(option.parseArg, option.long ?? option.flags);
  }
  for (const argument of command.registeredArguments) {
    if (argument.parseArg) argument.parseArg = wrap(argument.parseArg, argument.name().toUpperCase());
  }
  for (const sub of command.commands) nameParserFailures(sub);
}

/**
 * A fresh command tree. `exitOverride` makes commander throw instead of
 * exiting, so run.ts decides every exit code in one place; `output` (default
 * the process's stdout and stderr) receives everything the commands print.
 */
export function createProgram(output?: Pick<OutputConfiguration, "writeOut" | "writeErr">): Command {
  const program = new Command("convene")
    .description("convene: a Raft-replicated coordinator for clusters of meeting servers")
    .version(packageVersion())
    .enablePositionalOptions()
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();
  // Before the subcommands are added: they copy it.
  if (output) program.configureOutput(output);
  addProcessCommands(program);
  addClusterCommands(program);
  addAppCommands(program);
  addMemberCommands(program);
  addSnapshotCommands(program);
  addCertsCommand(program);
  program.addHelpText("after", helpFooter);
  nameParserFailures(program);
  return program;
}
