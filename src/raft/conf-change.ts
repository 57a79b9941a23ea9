/**
 * Encoding of a membership change inside a log entry. JSON keeps the entry
 * readable in the audit log; a change is rare and small.
 */
import { ConfChangeError } from "./errors.js";
import { type ConfChange, ConfChangeType } from "./types.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeConfChange(cc: ConfChange): Uint8Array {
  return encoder.encode(JSON.stringify(cc));
}

/** Decodes a committed conf change entry; throws ConfChangeError if malformed. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  let raw: unknown;
  try {
    raw = JSON.parse(decoder.decode(data));
  } catch (err) {
    throw new ConfChangeError("conf change entry is not valid JSON", { cause: err });
  }
  const cc = raw as Partial<ConfChange> | null;
  if (!cc || typeof cc !== "object") throw new ConfChangeError("conf change entry is not an object");
  if (cc.type !== ConfChangeType.AddVoter && cc.type !== ConfChangeType.AddLearner && cc.type !== ConfChangeType.RemoveNode) {
    throw new ConfChangeError(`conf change type must be 0, 1 or 2, got ${String(cc.type)}`);
  }
  if (typeof cc.nodeId !== "string" || cc.nodeId.length === 0) {
    throw new ConfChangeError("conf change nodeId must be a non-empty string");
  }
  return { type: cc.type, nodeId: cc.nodeId, ...(typeof cc.context === "string" ? { context: cc.context } : {}) };
}
