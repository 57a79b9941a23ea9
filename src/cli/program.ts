/**
 * The `convene` command tree (commander). src/cli.ts builds it with
 * createProgram(), parses process.argv and maps failures to exit codes
 * (errors.ts). Usage errors are commander's own: it names the unknown
 * command, option or bad argument, and the program exits 2.
 */
import { readFileSync } from "node:fs";
import { Command } from "commander";
import { addAppCommands } from "./app-commands.js";
import { addCertsCommand } from "./certs-command.js";
import { addClusterCommands } from "./cluster-commands.js";
import { addMemberCommands } from "./member-commands.js";
import { addProcessCommands } from "./process-commands.js";

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
  convene nodes --json | jq '.nodes[].state'
  convene certs --out ./certs && CONVENE_TOKEN=$(cat certs/operator.token) convene status --ca certs/ca.crt`;

/**
 * A fresh command tree. `exitOverride` makes commander throw instead of
 * exiting, so src/cli.ts decides every exit code in one place.
 */
export function createProgram(): Command {
  const program = new Command("convene")
    .description("convene: a Raft-replicated coordinator for clusters of meeting servers")
    .version(packageVersion())
    .enablePositionalOptions()
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();
  addProcessCommands(program);
  addClusterCommands(program);
  addAppCommands(program);
  addMemberCommands(program);
  addCertsCommand(program);
  program.addHelpText("after", helpFooter);
  return program;
}
