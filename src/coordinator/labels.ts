/**
 * Node labels and the label selectors that constrain placement.
 *
 * Labels are held as key/value pairs sorted by key (code-unit order), never
 * as plain objects: a sorted list has one encoding per set of labels (so
 * snapshots compare byte for byte), needs no guard against keys such as
 * "__proto__", and lets a selector be matched by one merge pass.
 */
import { InvalidArgumentError } from "./errors.js";
import { requireNoControlChars, shown } from "./ids.js";

/** Sorted by key, keys unique. Produce one only through `validateLabels`. */
export type Labels = readonly (readonly [key: string, value: string])[];

export const MAX_LABELS = 32;
export const MAX_LABEL_KEY_CHARS = 64;
export const MAX_LABEL_VALUE_CHARS = 256;

export const NO_LABELS: Labels = [];

export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Accepts a proto map (a plain object), a Map, or a list of pairs, checks
 * the bounds (at most 32 labels; keys 1..64 characters, values 0..256, no
 * control characters; no key twice) and returns the canonical sorted form.
 */
export function validateLabels(value: unknown, field = "labels"): Labels {
  const pairs = labelPairs(value, field);
  if (pairs.length > MAX_LABELS) {
    throw new InvalidArgumentError(`${field} must hold at most ${MAX_LABELS} labels, got ${pairs.length}`);
  }
  for (const [key, val] of pairs) {
    if (typeof key !== "string" || key.length < 1 || key.length > MAX_LABEL_KEY_CHARS) {
      throw new InvalidArgumentError(`${field} keys must be 1..${MAX_LABEL_KEY_CHARS} characters, got ${shown(key)}`);
    }
    if (typeof val !== "string" || val.length > MAX_LABEL_VALUE_CHARS) {
      throw new InvalidArgumentError(
        `${field}[${JSON.stringify(key)}] must be a string of at most ${MAX_LABEL_VALUE_CHARS} characters, got ${shown(val)}`,
      );
    }
    requireNoControlChars(key, `${field} key`);
    requireNoControlChars(val, `${field}[${JSON.stringify(key)}]`);
  }
  const sorted = pairs.map(([k, v]) => [k as string, v as string] as const).sort((a, b) => compareStrings(a[0], b[0]));
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]![0] === sorted[i - 1]![0]) {
      throw new InvalidArgumentError(`${field} must not repeat a key, got ${shown(sorted[i]![0])} twice`);
    }
  }
  return sorted;
}

function labelPairs(value: unknown, field: string): (readonly [unknown, unknown])[] {
  if (value === undefined || value === null) return [];
  if (value instanceof Map) return [...value.entries()];
  if (Array.isArray(value)) {
    return value.map((pair: unknown) => {
      if (!Array.isArray(pair) || pair.length !== 2) {
        throw new InvalidArgumentError(`${field} must be a map of strings or a list of [key, value] pairs`);
      }
      return [pair[0], pair[1]] as const;
    });
  }
  if (typeof value === "object") return Object.entries(value);
  throw new InvalidArgumentError(`${field} must be a map of strings, got ${shown(value)}`);
}

/**
 * Whether every key/value of `selector` is among `labels` (both sorted).
 * An empty selector matches every node.
 */
export function labelsMatch(labels: Labels, selector: Labels): boolean {
  let i = 0;
  for (const [key, value] of selector) {
    while (i < labels.length && labels[i]![0] < key) i++;
    if (i === labels.length || labels[i]![0] !== key || labels[i]![1] !== value) return false;
    i++;
  }
  return true;
}

/** Whether any key/value of `excluded` is among `labels` (both sorted): such a node may not host the meeting. */
export function labelsShareAny(labels: Labels, excluded: Labels): boolean {
  let i = 0;
  for (const [key, value] of excluded) {
    while (i < labels.length && labels[i]![0] < key) i++;
    if (i < labels.length && labels[i]![0] === key && labels[i]![1] === value) return true;
  }
  return false;
}

/** The labels as a plain object with own properties only, for the proto map. */
export function labelsToRecord(labels: Labels): Record<string, string> {
  const record: Record<string, string> = {};
  // defineProperty, not assignment: a key "__proto__" stays an own property.
  for (const [key, value] of labels) Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
  return record;
}

/** "k=v,k2=v2", for messages and the audit log. */
export function labelsToString(labels: Labels): string {
  return labels.map(([k, v]) => `${k}=${v}`).join(",");
}
