/**
 * Parsers for command-line arguments and option values, handed to
 * commander (`.argument(name, description, parser)`, `.option(...,
 * parser)`). Each throws InvalidValue with the rule in words and the value
 * cut short (describe.ts); program.ts wraps every parser of the tree so the
 * message starts with the flag or argument (`--node must be a node id:
 * ...`) and becomes a UsageError of the command (exit 2). So a bad id never
 * costs a round trip to the cluster. (Commander's own refusal would echo
 * the whole value, however long.)
 *
 * The id rules are API.md's; the server checks them too.
 */
import { formatDuration, parseDuration } from "../node-agent/index.js";
import { HOST_PORT_RULE, describeValue, idProblem } from "../wire/describe.js";

/** A value that broke its parser's rule; the message is the rule and the value, without the flag's name. */
export class InvalidValue extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvalidValue";
  }
}

const HOST_PORT = /^(?:[A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/;

/** The members an operator command tries, in order, when none is given. */
export const DEFAULT_COORDINATORS: readonly string[] = ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"];

export function nodeIdArg(value: string): string {
  const problem = idProblem("node", value);
  if (problem) throw new InvalidValue(problem);
  return value;
}

/** A coordinator member's id (same rule as a node id, named for what it is). */
export function memberIdArg(value: string): string {
  const problem = idProblem("member", value);
  if (problem) throw new InvalidValue(problem);
  return value;
}

export function meetingIdArg(value: string): string {
  const problem = idProblem("meeting", value);
  if (problem) throw new InvalidValue(problem);
  return value;
}

export function isHostPort(value: string): boolean {
  const m = HOST_PORT.exec(value);
  return m !== null && Number(m[1]) <= 65_535;
}

export function hostPortArg(value: string): string {
  if (!isHostPort(value)) throw new InvalidValue(`must be ${HOST_PORT_RULE}; got ${describeValue(value)}`);
  return value;
}

/** "a:1,b:2" → ["a:1", "b:2"]; at least one, each host:port, none twice. */
export function coordinatorsArg(value: string): string[] {
  const list = value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (list.length === 0) throw new InvalidValue("must list at least one member as host:port, comma-separated");
  for (const address of list) {
    if (!isHostPort(address)) throw new InvalidValue(`must list members as ${HOST_PORT_RULE}, comma-separated; got ${describeValue(address)}`);
  }
  const twice = list.find((a, i) => list.indexOf(a) !== i);
  if (twice !== undefined) throw new InvalidValue(`lists ${describeValue(twice)} twice`);
  return list;
}

/** A parser for an integer option within [min, max]. */
export function intArg(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value) => {
    const n = /^-?\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidValue(`must be a whole number from ${min.toLocaleString("en-US")} to ${max.toLocaleString("en-US")}; got ${describeValue(value)}`);
    }
    return n;
  };
}

/** A parser for a duration option ("10m", "30s", "500ms", "1h", or ms) within [minMs, maxMs]. */
export function durationArg(minMs: number, maxMs: number): (value: string) => number {
  return (value) => {
    const ms = parseDuration(value);
    if (ms === undefined || ms < minMs || ms > maxMs) {
      throw new InvalidValue(`must be a duration such as 10m, 30s or 500ms, from ${formatDuration(minMs)} to ${formatDuration(maxMs)}; got ${describeValue(value)}`);
    }
    return ms;
  };
}

/** "2/s", "2" or "0.5/s" → moves per second, above 0 and at most 100. */
export function rateArg(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(?:\/s)?$/.exec(value.trim());
  const rate = m ? Number(m[1]) : Number.NaN;
  if (!(rate > 0 && rate <= 100)) throw new InvalidValue(`must be a rate such as 2/s or 0.5/s, above 0 and at most 100/s; got ${describeValue(value)}`);
  return rate;
}

/** A number from 0 to 1. */
export function fractionArg(value: string): number {
  const n = /^\d*\.?\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!(n >= 0 && n <= 1)) throw new InvalidValue(`must be a number from 0 to 1; got ${describeValue(value)}`);
  return n;
}

/** KEY=VALUE, collected over repeats into a map (commander's reducer form). */
export function labelArg(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = value.indexOf("=");
  if (eq <= 0) throw new InvalidValue(`must be KEY=VALUE; got ${describeValue(value)}`);
  const key = value.slice(0, eq);
  if (Object.prototype.hasOwnProperty.call(previous, key)) throw new InvalidValue(`names the key ${describeValue(key)} twice`);
  return { ...previous, [key]: value.slice(eq + 1) };
}
