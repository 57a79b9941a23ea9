/**
 * The chaos run's options: defaults, and `parseChaosArgs`, which the entry
 * script (scripts/chaos.ts) calls first. Each broken rule throws a
 * ChaosUsageError naming the flag and the value:
 *   --members must be 3 or 5, got "4"
 */

export type PartitionChoice = "auto" | "netns" | "proxy";

export interface ChaosOptions {
  /** Seconds of faults under load; recovery and checks come after. */
  readonly durationS: number;
  /** Seeds the fault plan (and the workload's choices). */
  readonly seed: number;
  readonly members: 3 | 5;
  readonly gateways: number;
  readonly servers: number;
  /** How member partitions are made: auto tries network namespaces, then falls back to the TCP proxy. */
  readonly partitions: PartitionChoice;
  /** Mean pause between two faults of one lane, ms. */
  readonly meanGapMs: number;
  /** Concurrent client workers. */
  readonly clients: number;
  /** Meetings the workload keeps open at once (about). */
  readonly meetings: number;
  /** The meeting servers' checkpoint interval. */
  readonly checkpointIntervalMs: number;
  /** A dead server's meetings must have moved within lease + this (more when a member fault overlapped). */
  readonly moveSlackMs: number;
  /** Print the fault plan for the seed and exit, starting nothing. */
  readonly planOnly: boolean;
  /** Keep the run directory (process logs, recorded history) instead of removing it. */
  readonly keep: boolean;
  readonly verbose: boolean;
}

export const chaosDefaults: ChaosOptions = {
  durationS: 60,
  seed: 1,
  members: 3,
  gateways: 2,
  servers: 4,
  partitions: "auto",
  meanGapMs: 1500,
  clients: 4,
  meetings: 24,
  checkpointIntervalMs: 500,
  moveSlackMs: 3500,
  planOnly: false,
  keep: false,
  verbose: false,
};

/** The slot name of meeting server `i` (from 0; `servers` of them): m1, m2, ...; also its first node id. */
export function serverName(i: number): string {
  return `m${i + 1}`;
}

export class ChaosUsageError extends Error {
  override readonly name = "ChaosUsageError";
}

export const chaosUsage = `usage: npx tsx scripts/chaos.ts [--duration S] [--seed N] [--members 3|5]
       [--partitions auto|netns|proxy] [--gap-ms N] [--clients N] [--meetings N]
       [--servers N] [--gateways N] [--checkpoint-interval-ms N] [--move-slack-ms N]
       [--plan] [--keep] [--verbose]

Runs real coordinator members, gateways and meeting servers on this machine,
injects seeded faults under load, then checks for lost writes and violations.
Ends with: chaos: <faults> faults, <ops> ops, <lost> lost, <violations> violations
(exit 1 on any loss or violation, 2 on bad flags, 3 when the run could not start).`;

function int(flag: string, raw: string | undefined, min: number, max: number): number {
  const n = raw === undefined || raw.trim() === "" ? Number.NaN : Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ChaosUsageError(`${flag} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw ?? null)}`);
  }
  return n;
}

/** Parses argv (without node and the script); throws ChaosUsageError. */
export function parseChaosArgs(argv: readonly string[]): ChaosOptions {
  const o: { -readonly [K in keyof ChaosOptions]: ChaosOptions[K] } = { ...chaosDefaults };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    switch (flag) {
      case "--duration":
        o.durationS = int(flag, value(), 5, 24 * 3600);
        break;
      case "--seed":
        o.seed = int(flag, value(), 0, 2 ** 31 - 1);
        break;
      case "--members": {
        const raw = value();
        if (raw !== "3" && raw !== "5") throw new ChaosUsageError(`--members must be 3 or 5, got ${JSON.stringify(raw ?? null)}`);
        o.members = raw === "3" ? 3 : 5;
        break;
      }
      case "--partitions": {
        const raw = value();
        if (raw !== "auto" && raw !== "netns" && raw !== "proxy") {
          throw new ChaosUsageError(`--partitions must be auto, netns or proxy, got ${JSON.stringify(raw ?? null)}`);
        }
        o.partitions = raw;
        break;
      }
      case "--gap-ms":
        o.meanGapMs = int(flag, value(), 100, 60_000);
        break;
      case "--clients":
        o.clients = int(flag, value(), 1, 32);
        break;
      case "--meetings":
        o.meetings = int(flag, value(), 1, 1000);
        break;
      case "--servers":
        o.servers = int(flag, value(), 2, 16);
        break;
      case "--gateways":
        o.gateways = int(flag, value(), 1, 8);
        break;
      case "--checkpoint-interval-ms":
        o.checkpointIntervalMs = int(flag, value(), 50, 60_000);
        break;
      case "--move-slack-ms":
        o.moveSlackMs = int(flag, value(), 0, 600_000);
        break;
      case "--plan":
        o.planOnly = true;
        break;
      case "--keep":
        o.keep = true;
        break;
      case "--verbose":
        o.verbose = true;
        break;
      case "--help":
      case "-h":
        throw new ChaosUsageError(chaosUsage);
      default:
        throw new ChaosUsageError(`unknown flag ${JSON.stringify(arg)}\n\n${chaosUsage}`);
    }
  }
  return o;
}
