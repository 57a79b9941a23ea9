/**
 * How convene's messages show a value they refuse and state the rule it
 * broke, the same way everywhere (flags, config files, HTTP paths, gRPC
 * requests): a value is quoted and cut short, so a 10,000-character id is
 * not echoed back; a rule is said in words, never as a regular expression;
 * a field is named the way the reader wrote it (a flag on the command line,
 * a key in a config file), which the caller decides with FieldNames.
 */

/** Strings longer than this are cut in messages. */
export const SHOWN_CHARS = 40;

/** The value as a message shows it: `"abc"`, `"abcd…" (10,000 characters)`, `12`, `a list of 3`. */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (typeof value === "string") {
    if (value.length <= SHOWN_CHARS) return JSON.stringify(value);
    // JSON.stringify escapes a surrogate the cut may split.
    return `${JSON.stringify(`${value.slice(0, SHOWN_CHARS)}…`)} (${value.length.toLocaleString("en-US")} characters)`;
  }
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint" || value === null) return String(value);
  if (value instanceof Uint8Array) return `${value.length.toLocaleString("en-US")} bytes`;
  if (Array.isArray(value)) return value.length === 0 ? "an empty list" : `a list of ${value.length}`;
  if (typeof value === "function") return "a function";
  return typeof value === "object" ? "a mapping" : typeof value;
}

/** "a", "a and b", "a, b and c". */
export function inWords(items: readonly string[]): string {
  if (items.length <= 1) return items.join("");
  return `${items.slice(0, -1).join(", ")} and ${items.at(-1)!}`;
}

/**
 * How a validator names a field in its messages. Validators default to the
 * config key (`nodeId`); the command line passes one that answers with the
 * flag the operator typed (`--node-id`), or `nodeId in agent.yaml` for a
 * value that came from a file.
 */
export type FieldNames = (field: string) => string;

export const configKeys: FieldNames = (field) => field;

/** "x is required" or "x, y and z are required" for the fields `raw` lacks; undefined when none is missing. */
export function missingFields(raw: Readonly<Record<string, unknown>>, fields: readonly string[], names: FieldNames): string | undefined {
  const missing = fields.filter((f) => raw[f] === undefined || raw[f] === "").map(names);
  if (missing.length === 0) return undefined;
  return `${inWords(missing)} ${missing.length === 1 ? "is" : "are"} required`;
}

// ---- API.md's ids, as rules in words -----------------------------------

export const NODE_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
export const MEETING_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

interface IdRule {
  readonly what: string;
  readonly max: number;
  readonly pattern: RegExp;
  readonly allowed: RegExp;
  readonly words: string;
}

/** A node is a meeting server; a member is one of the coordinator group. Their ids share a rule. */
export type IdKind = "node" | "member" | "meeting";

const ID_RULES: Record<IdKind, IdRule> = {
  node: { what: "a node id", max: 64, pattern: NODE_ID_PATTERN, allowed: /[A-Za-z0-9._-]/, words: 'letters, digits, ".", "_" or "-"' },
  member: { what: "a member id", max: 64, pattern: NODE_ID_PATTERN, allowed: /[A-Za-z0-9._-]/, words: 'letters, digits, ".", "_" or "-"' },
  meeting: { what: "a meeting id", max: 128, pattern: MEETING_ID_PATTERN, allowed: /[A-Za-z0-9._:-]/, words: 'letters, digits, ".", "_", ":" or "-"' },
};

/** The rule in words: `a node id: 1 to 64 letters, digits, ".", "_" or "-"`. */
export function idRule(kind: IdKind): string {
  const r = ID_RULES[kind];
  return `${r.what}: 1 to ${r.max} ${r.words}`;
}

const CHARACTER_NAMES: Record<string, string> = { " ": "a space", "\t": "a tab", "\n": "a line break", "/": '"/"' };

/**
 * Why `value` is not an id of `kind`, as the end of a sentence that starts
 * with the field's name (`must be a node id: ...; got "a b" (a space is not allowed)`),
 * or undefined when it is one.
 */
export function idProblem(kind: IdKind, value: unknown): string | undefined {
  const r = ID_RULES[kind];
  if (typeof value === "string" && r.pattern.test(value)) return undefined;
  const rule = `must be ${idRule(kind)}`;
  if (typeof value !== "string") return `${rule}; got ${describeValue(value)}`;
  if (value === "") return `${rule}; got an empty string`;
  if (value.length > r.max) return `${rule}; got ${describeValue(value)}, longer than ${r.max}`;
  const bad = [...value].find((c) => !r.allowed.test(c))!;
  const name = CHARACTER_NAMES[bad] ?? JSON.stringify(bad);
  return `${rule}; got ${describeValue(value)} (${name} is not allowed)`;
}

/** The host:port rule in words. */
export const HOST_PORT_RULE = "host:port (a host name or IP address, a colon, a port from 1 to 65535), such as 127.0.0.1:7001";
