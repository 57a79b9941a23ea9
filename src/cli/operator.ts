/**
 * What every operator command shares: the flags that say which members to
 * ask (--coordinators, or CONVENE_COORDINATORS; --timeout-ms), how to reach
 * them securely (--ca, --cert, --key, --token, --insecure, each also from
 * CONVENE_CA, CONVENE_CERT, CONVENE_KEY, CONVENE_TOKEN) and how to print
 * (--json), and the runner that opens a ClusterClient, prints the rendered
 * answer and names the command in any failure.
 */
import { type Command, Option } from "commander";
import { DEFAULT_COORDINATORS, coordinatorsArg, intArg } from "./arguments.js";
import { loadClientSecurity, validateClientSecurity } from "../security/client-security.js";
import { ClusterClient } from "./cluster-client.js";
import { CallError, CommandError, CommandFailed, UsageError } from "./errors.js";
import type { Rendered } from "./render.js";

export const DEFAULT_TIMEOUT_MS = 5_000;

export interface ClusterFlags {
  coordinators: string[];
  timeoutMs: number;
  json?: boolean;
  /** The old `convene admin`/`convene log` flag: one member to ask. */
  server?: string[];
  ca?: string;
  cert?: string;
  key?: string;
  token?: string;
  insecure?: boolean;
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
    .option("--json", "print the answer as JSON (proto field names, enum names)")
    .addOption(new Option("--ca <file>", "TLS: the CA that signed the members' certificates").env("CONVENE_CA"))
    .addOption(new Option("--cert <file>", "mutual TLS: this operator's certificate").env("CONVENE_CERT"))
    .addOption(new Option("--key <file>", "mutual TLS: its private key").env("CONVENE_KEY"))
    .addOption(new Option("--token <token>", "bearer token of role operator (better from $CONVENE_TOKEN: the command line is visible to others)").env("CONVENE_TOKEN"))
    .option("--insecure", "send plaintext to members beyond loopback anyway");
}

/** Writes to the command's standard output (the process's, or a test's sink: run.ts). */
export function writeOut(command: Command, text: string): void {
  const write = command.configureOutput().writeOut;
  if (write) write(text);
  else process.stdout.write(text);
}

/** "members remove" for the command `convene members remove ...`. */
export function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(" ");
}

/** The members to ask and how to reach them, from the command's flags (UsageError when they are inconsistent). */
export function clusterAccess(command: Command): { coordinators: string[]; security: ReturnType<typeof loadClientSecurity>; flags: ClusterFlags } {
  const flags = command.optsWithGlobals<ClusterFlags>();
  const coordinators = flags.server ?? flags.coordinators;
  try {
    return { coordinators, security: loadClientSecurity(validateClientSecurity(flags, coordinators, flags.server ? "--server" : "--coordinators")), flags };
  } catch (err) {
    throw new UsageError(commandPath(command), err instanceof Error ? err.message : String(err), { cause: err });
  }
}

/**
 * Runs one operator command: `body` makes its calls and renders the answer,
 * which goes to stdout as text or JSON. A refusal from the cluster becomes
 * CommandFailed naming the command (src/cli.ts prints it and exits 1).
 */
export async function runOperator(command: Command, body: (client: ClusterClient) => Promise<Rendered>): Promise<void> {
  const { coordinators, security, flags } = clusterAccess(command);
  const client = new ClusterClient({ coordinators, timeoutMs: flags.timeoutMs, security });
  try {
    const rendered = await body(client);
    writeOut(command, flags.json ? `${JSON.stringify(rendered.json, null, 2)}\n` : rendered.text);
  } catch (err) {
    if (err instanceof CallError || err instanceof CommandError) {
      throw new CommandFailed(commandPath(command), err.exitCode, err.message, { cause: err });
    }
    throw err;
  } finally {
    client.close();
  }
}
