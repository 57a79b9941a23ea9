/**
 * What `convene start` fails with before anything runs: a bad option
 * (StartConfigError, a usage error: exit 2), a cluster already running on
 * the data directory (ClusterRunningError) or a port another program holds
 * (PortInUseError), both exit 1. Each message is the one line the
 * terminal shows.
 */

/** An option broke a rule; the message names its flag (or config key), the rule and the value. */
export class StartConfigError extends Error {
  readonly code = "start_config";
  constructor(
    /** The config key (or "ports" for a clash between them). */
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = "StartConfigError";
  }
}

/** Another `convene start` holds the data directory's lock. */
export class ClusterRunningError extends Error {
  readonly code = "cluster_running";
  constructor(
    readonly pid: number,
    message: string,
  ) {
    super(message);
    this.name = "ClusterRunningError";
  }
}

/** A port the cluster needs is taken by another program. */
export class PortInUseError extends Error {
  readonly code = "port_in_use";
  constructor(
    readonly port: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "PortInUseError";
  }
}
