/**
 * What every operator command shares: the flags that say which members to
 * ask (--coordinators, or CONVENE_COORDINATORS; --timeout-ms) and how to
 * print (--json), and the runner that opens a ClusterClient, prints the
 * rendered answer and names the command in any failure.
 */
import { type Command, Option } from "commander";
import { DEFAULT_COORDINATORS, coordinatorsArg, intArg } from "./arguments.js";
import { ClusterClient } from "./cluster-client.js";
import { CallError, CommandError, CommandFailed } from "./errors.js";
import type { Rendered } from "./render.js";

export const DEFAULT_TIMEOUT_MS = 5_000;

export interface ClusterFlags {
  coordinators: string[];
  timeoutMs: number;
  json?: boolean;
  /** The old `convene admin`/`convene log` flag: one member to ask. */
  server?: string[];
}

/** Adds --coordinators, --timeout-ms and --json to an operator command. */
export function withClusterOptions(command: Command): Command {
  return command
    .addOption(
      new Option("--coordinators <list>", "members to ask, tried in order (comma-separated host:port)")
        .env("CONVENE_COORDINATORS")
        .default([...DEFAULT_COORDINATORS], DEFAULT_COORDINATORS.join(","))
        .argParser(coordinatorsArg),
    )
    .addOption(new Option("--timeout-ms <n>", "deadline of the call at each member tried").default(DEFAULT_TIMEOUT_MS).argParser(intArg(1, 600_000)))
    .addOption(new Option("--server <address>", "ask only this member (old spelling)").argParser(coordinatorsArg).hideHelp())
    .option("--json", "print the answer as JSON (proto field names, enum names)");
}

/** "members remove" for the command `convene members remove ...`. */
export function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(" ");
}

/**
 * Runs one operator command: `body` makes its calls and renders the answer,
 * which goes to stdout as text or JSON. A refusal from the cluster becomes
 * CommandFailed naming the command (src/cli.ts prints it and exits 1).
 */
export async function runOperator(command: Command, body: (client: ClusterClient) => Promise<Rendered>): Promise<void> {
  const flags = command.optsWithGlobals<ClusterFlags>();
  const client = new ClusterClient({ coordinators: flags.server ?? flags.coordinators, timeoutMs: flags.timeoutMs });
  try {
    const rendered = await body(client);
    process.stdout.write(flags.json ? `${JSON.stringify(rendered.json, null, 2)}\n` : rendered.text);
  } catch (err) {
    if (err instanceof CallError || err instanceof CommandError) {
      throw new CommandFailed(commandPath(command), err.exitCode, err.message, { cause: err });
    }
    throw err;
  } finally {
    client.close();
  }
}
