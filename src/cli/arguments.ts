/**
 * Parsers for command-line arguments and option values, handed to
 * commander (`.argument(name, description, parser)`, `.option(...,
 * parser)`). Each throws commander's InvalidArgumentError, which commander
 * prints after naming the argument or option, then exits with a usage
 * error; so a bad id never costs a round trip to the cluster.
 *
 * The id rules are API.md's; the server checks them too.
 */
import { InvalidArgumentError } from "commander";
import { formatDuration, parseDuration } from "../node-agent/index.js";

export const NODE_ID = /^[A-Za-z0-9._-]{1,64}$/;
export const MEETING_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const HOST_PORT = /^(?:[A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/;

/** The members an operator command tries, in order, when none is given. */
export const DEFAULT_COORDINATORS: readonly string[] = ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"];

export function nodeIdArg(value: string): string {
  if (!NODE_ID.test(value)) throw new InvalidArgumentError(`a node id must match ${NODE_ID.source}.`);
  return value;
}

export function meetingIdArg(value: string): string {
  if (!MEETING_ID.test(value)) throw new InvalidArgumentError(`a meeting id must match ${MEETING_ID.source}.`);
  return value;
}

export function isHostPort(value: string): boolean {
  const m = HOST_PORT.exec(value);
  return m !== null && Number(m[1]) <= 65_535;
}

export function hostPortArg(value: string): string {
  if (!isHostPort(value)) throw new InvalidArgumentError("it must be host:port (port 0-65535).");
  return value;
}

/** "a:1,b:2" → ["a:1", "b:2"]; at least one, each host:port, none twice. */
export function coordinatorsArg(value: string): string[] {
  const list = value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (list.length === 0) throw new InvalidArgumentError("it must list at least one host:port, comma-separated.");
  for (const address of list) {
    if (!isHostPort(address)) throw new InvalidArgumentError(`each entry must be host:port, got ${JSON.stringify(address)}.`);
  }
  if (new Set(list).size !== list.length) throw new InvalidArgumentError("it lists an address twice.");
  return list;
}

/** A parser for an integer option within [min, max]. */
export function intArg(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value) => {
    const n = /^-?\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`it must be an integer from ${min} to ${max}.`);
    }
    return n;
  };
}

/** A parser for a duration option ("10m", "30s", "500ms", "1h", or ms) within [minMs, maxMs]. */
export function durationArg(minMs: number, maxMs: number): (value: string) => number {
  return (value) => {
    const ms = parseDuration(value);
    if (ms === undefined || ms < minMs || ms > maxMs) {
      throw new InvalidArgumentError(`it must be a duration such as 10m, 30s or 500ms, from ${formatDuration(minMs)} to ${formatDuration(maxMs)}.`);
    }
    return ms;
  };
}

/** "2/s", "2" or "0.5/s" → moves per second, above 0 and at most 100. */
export function rateArg(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(?:\/s)?$/.exec(value.trim());
  const rate = m ? Number(m[1]) : Number.NaN;
  if (!(rate > 0 && rate <= 100)) throw new InvalidArgumentError("it must be a rate such as 2/s or 0.5/s, above 0 and at most 100/s.");
  return rate;
}

/** A number from 0 to 1. */
export function fractionArg(value: string): number {
  const n = /^\d*\.?\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError("it must be a number from 0 to 1.");
  return n;
}

/** KEY=VALUE, collected over repeats into a map (commander's reducer form). */
export function labelArg(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = value.indexOf("=");
  if (eq <= 0) throw new InvalidArgumentError("it must be KEY=VALUE.");
  const key = value.slice(0, eq);
  if (Object.prototype.hasOwnProperty.call(previous, key)) throw new InvalidArgumentError(`it names the key ${JSON.stringify(key.slice(0, 64))} twice.`);
  return { ...previous, [key]: value.slice(eq + 1) };
}
