/**
 * Checks the shape of a message from the network before the core sees it:
 * bad input is refused with a typed error and never reaches the state.
 */
import { RaftError } from "./errors.js";
import type { Entry, Message, Snapshot } from "./types.js";
import { EntryType, MessageType, isLocalMessage } from "./types.js";

export class InvalidMessageError extends RaftError {
  readonly code = "INVALID_MESSAGE";
}

function isIndex(n: unknown): n is number {
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
}

function checkEntry(e: Entry, expectedIndex: number, maxTerm: number): string | undefined {
  if (e === null || typeof e !== "object") return "entry is not an object";
  if (!isIndex(e.index) || e.index !== expectedIndex) return `entry index ${e.index} where ${expectedIndex} was expected`;
  if (!isIndex(e.term) || e.term > maxTerm) return `entry ${e.index} has term ${e.term} past the message term ${maxTerm}`;
  if (e.type !== EntryType.Normal && e.type !== EntryType.ConfChange) return `entry ${e.index} has unknown type ${e.type}`;
  if (!(e.data instanceof Uint8Array)) return `entry ${e.index} data is not bytes`;
  return undefined;
}

function checkSnapshot(s: Snapshot | undefined): string | undefined {
  if (!s || typeof s !== "object" || !s.metadata) return "snapshot is missing";
  const { index, term, confState } = s.metadata;
  if (!isIndex(index) || !isIndex(term)) return `snapshot index ${index} or term ${term} is not a non-negative integer`;
  if (index === 0) return "snapshot index must be positive";
  if (!confState || !Array.isArray(confState.voters) || !Array.isArray(confState.learners)) {
    return "snapshot conf state must list voters and learners";
  }
  if (![...confState.voters, ...confState.learners].every((v) => typeof v === "string" && v.length > 0)) {
    return "snapshot conf state member ids must be non-empty strings";
  }
  if (!(s.data instanceof Uint8Array)) return "snapshot data is not bytes";
  return undefined;
}

/** Returns an error describing what is wrong with `m`, or undefined if it is well formed. */
export function validateMessage(m: Message): InvalidMessageError | undefined {
  const problem = findProblem(m);
  return problem === undefined ? undefined : new InvalidMessageError(`invalid message: ${problem}`);
}

function findProblem(m: Message): string | undefined {
  if (m === null || typeof m !== "object") return "not an object";
  if (typeof m.type !== "number" || MessageType[m.type] === undefined) return `unknown type ${String(m.type)}`;
  if (isLocalMessage(m.type)) return `type ${MessageType[m.type]} is local and cannot come from the network`;
  if (typeof m.from !== "string" || m.from.length === 0) return "from must be a non-empty member id";
  if (typeof m.to !== "string") return "to must be a member id";
  for (const field of ["term", "logTerm", "index", "commit", "rejectHint"] as const) {
    if (!isIndex(m[field])) return `${field} must be a non-negative integer, got ${String(m[field])}`;
  }
  // Term 0 means "local" to the core: only forwarded requests may carry it.
  const forwarded = m.type === MessageType.Prop || m.type === MessageType.ReadIndex || m.type === MessageType.TransferLeader;
  if (m.term === 0 && !forwarded) return `term must be positive for ${MessageType[m.type]}`;
  if (!Array.isArray(m.entries)) return "entries must be a list";
  // A forwarded proposal's entries have no index or term yet.
  const isProposal = m.type === MessageType.Prop;
  for (let i = 0; i < m.entries.length; i++) {
    const e = m.entries[i]!;
    const problem = checkEntry(e, isProposal ? e?.index : m.index + 1 + i, isProposal ? 0 : m.term);
    if (problem) return problem;
  }
  if (m.type === MessageType.Snap) return checkSnapshot(m.snapshot);
  if ((m.type === MessageType.ReadIndex || m.type === MessageType.ReadIndexResp) && !(m.context instanceof Uint8Array)) {
    return "a read index message needs a context";
  }
  if (m.context !== undefined && !(m.context instanceof Uint8Array)) return "context must be bytes";
  return undefined;
}
