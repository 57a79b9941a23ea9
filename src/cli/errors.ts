/**
 * What a command can fail with, and the exit code each means: the one
 * place src/cli.ts turns a failure into a line on stderr and an exit code.
 *
 *   0  done
 *   1  the cluster (or the server being started) said no: a gRPC status,
 *      a port in use, a member that is not in the group
 *   2  the command line or a config file is wrong (commander's usage
 *      errors too): nothing was sent anywhere
 */
import { status as grpcStatus } from "@grpc/grpc-js";

export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** A bad flag value or config file; the message names the field and the rule. */
export class UsageError extends Error {
  readonly exitCode = EXIT_USAGE;
  constructor(
    /** The command as typed after `convene`, e.g. "gateway". */
    readonly command: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "UsageError";
  }
}

/** A call the cluster refused or could not answer, with its gRPC status. */
export class CallError extends Error {
  readonly exitCode = EXIT_FAILED;
  constructor(
    readonly code: grpcStatus,
    readonly details: string,
    options?: { cause?: unknown },
  ) {
    super(`${grpcStatus[code] ?? `status ${code}`}: ${details}`, options);
    this.name = "CallError";
  }
}

/** A command that failed for a reason the operator must act on (not a gRPC status). */
export class CommandError extends Error {
  readonly exitCode = EXIT_FAILED;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CommandError";
  }
}

/** A CallError or CommandError seen from the command that ran it: `convene <command>: <message>`. */
export class CommandFailed extends Error {
  constructor(
    readonly command: string,
    readonly exitCode: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "CommandFailed";
  }
}

/**
 * Config errors of any module: the Raft layer's ConfigError, the agent's
 * AgentConfigError, and whatever the gateway and demo server throw, which
 * follow the same naming.
 */
export function isConfigError(err: unknown): err is Error {
  return err instanceof Error && /ConfigError$/.test(err.name);
}
