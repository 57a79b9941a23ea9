/**
 * Validators for every field that reaches the coordinator from outside.
 * The services call them before proposing (so a bad request costs no Raft
 * write), and apply calls them again on the decoded command (so apply is
 * safe on its own). Each throws `InvalidArgumentError` whose message names
 * the field (its proto name), the rule and the value:
 *   meeting_id must match ^[A-Za-z0-9._:-]{1,128}$, got "a b"
 * Each returns the value, narrowed, so callers write `x = validateX(raw)`.
 */
import { InvalidArgumentError } from "./errors.js";

export const NODE_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
export const MEETING_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
export const MAX_REGION_CHARS = 64;
export const MAX_UINT32 = 0xffff_ffff;

/** A host name, IPv4 address or bracketed IPv6 address, then a port. */
const ADDRESS_PATTERN = /^(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9][A-Za-z0-9.-]{0,252}):([0-9]{1,5})$/;
/** C0 and C1 control characters: never meaningful in names, and they spoil logs. */
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/** The value as it appears in a message: quoted, and cut short when long. */
export function shown(value: unknown): string {
  if (typeof value === "string") {
    return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  }
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (typeof value === "number" || typeof value === "boolean" || value === null || value === undefined) return String(value);
  return typeof value;
}

function requireString(value: unknown, field: string): string {
  if (typeof value !== "string") throw new InvalidArgumentError(`${field} must be a string, got ${shown(value)}`);
  return value;
}

function requirePattern(value: unknown, field: string, pattern: RegExp): string {
  const text = requireString(value, field);
  if (!pattern.test(text)) throw new InvalidArgumentError(`${field} must match ${pattern.source}, got ${shown(text)}`);
  return text;
}

/** A node id: `^[A-Za-z0-9._-]{1,64}$`. */
export function validateNodeId(value: unknown, field = "node_id"): string {
  return requirePattern(value, field, NODE_ID_PATTERN);
}

/** A meeting id: `^[A-Za-z0-9._:-]{1,128}$`. */
export function validateMeetingId(value: unknown, field = "meeting_id"): string {
  return requirePattern(value, field, MEETING_ID_PATTERN);
}

/**
 * Where a meeting server serves meeting traffic: "host:port". The gateway
 * connects only to addresses that passed this check at Register, so it is
 * strict: no scheme, no path, no user info, a port in 1..65535.
 */
export function validateAddress(value: unknown, field = "address"): string {
  const text = requireString(value, field);
  const match = ADDRESS_PATTERN.exec(text);
  const port = match ? Number(match[1]) : 0;
  if (!match || port < 1 || port > 65535) {
    throw new InvalidArgumentError(
      `${field} must be "host:port" (a host name, IPv4 or [IPv6] address, and a port in 1..65535), got ${shown(text)}`,
    );
  }
  return text;
}

/** Max meetings a node hosts: an integer in 1..2^32-1 (proto uint32, and > 0). */
export function validateCapacity(value: unknown, field = "capacity"): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > MAX_UINT32) {
    throw new InvalidArgumentError(`${field} must be an integer in 1..${MAX_UINT32}, got ${shown(value)}`);
  }
  return value;
}

/** A region: may be empty, at most 64 characters, no control characters. */
export function validateRegion(value: unknown, field = "region"): string {
  const text = requireString(value, field);
  if (text.length > MAX_REGION_CHARS) {
    throw new InvalidArgumentError(`${field} must be at most ${MAX_REGION_CHARS} characters, got ${text.length}`);
  }
  requireNoControlChars(text, field);
  return text;
}

const MAX_INCARNATION_CHARS = 128;

/** Register's optional process token: "" or up to 128 characters with no control characters. */
export function validateIncarnation(value: unknown, field = "incarnation"): string {
  const text = requireString(value, field);
  if (text.length > MAX_INCARNATION_CHARS) {
    throw new InvalidArgumentError(`${field} must be at most ${MAX_INCARNATION_CHARS} characters, got ${text.length}`);
  }
  requireNoControlChars(text, field);
  return text;
}

export function requireNoControlChars(text: string, field: string): void {
  if (CONTROL_CHARS.test(text)) throw new InvalidArgumentError(`${field} must not contain control characters, got ${shown(text)}`);
}

/** A node's reported load: a number in 0..1. */
export function validateLoad(value: unknown, field = "load"): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new InvalidArgumentError(`${field} must be a number in 0..1, got ${shown(value)}`);
  }
  return value;
}

/**
 * A count the API types uint64 (generation, epoch, sequence, times). Held
 * as a JavaScript number, so bounded by 2^53-1: larger values are refused
 * rather than silently rounded.
 */
export function validateUint(value: unknown, field: string, min = 0): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidArgumentError(`${field} must be an integer in ${min}..2^53-1, got ${shown(value)}`);
  }
  // -0 passes the checks above; normalise it so every encoding is the same.
  return value === 0 ? 0 : value;
}

/** A generation: the counter Register hands out, starting at 1. */
export function validateGeneration(value: unknown, field = "generation"): number {
  return validateUint(value, field, 1);
}

/** An epoch: starts at 1 when a meeting is created. */
export function validateEpoch(value: unknown, field = "epoch"): number {
  return validateUint(value, field, 1);
}

/** A checkpoint sequence: per meeting, may start at 0. */
export function validateSequence(value: unknown, field = "sequence"): number {
  return validateUint(value, field, 0);
}

export function validateBoolean(value: unknown, field: string): boolean {
  if (typeof value !== "boolean") throw new InvalidArgumentError(`${field} must be a boolean, got ${shown(value)}`);
  return value;
}

export function validateBytes(value: unknown, field: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new InvalidArgumentError(`${field} must be bytes, got ${shown(value)}`);
  return value;
}
