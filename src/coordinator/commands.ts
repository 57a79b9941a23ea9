/**
 * The coordinator's commands: what the services propose through Raft and
 * every member applies. Encoded with msgpackr as `{ v, type, ...fields }`.
 * `v` is the command version the leader wrote, chosen by the cluster
 * version (formats.ts), so every member can read every entry:
 *   1  `{ v: 1, type, nowMs, ...fields }`: every release before cluster versions.
 *   2  adds `term`, the term of the leader that proposed it (the audit trail
 *      shows it), and the setClusterVersion command.
 *   3  adds the commands of planned moves, drains with a deadline, undrain,
 *      rebalancing and load reports, register's `limits`, and create's
 *      `excludedLabels` and `preferredNodeId` (command-gates.ts).
 * Every older version still decodes. A version newer than this build's is
 * not a malformed command but one this member cannot apply as the others
 * do: decoding throws NewerFormatError and the member stops (it must not
 * diverge); that happens only when the cluster version was raised past
 * this binary, i.e. a downgrade after the upgrade was finished.
 *
 * Every command carries `nowMs`, the proposing leader's clock read when it
 * built the command: apply never reads a clock. The state keeps the largest
 * `nowMs` seen as its clock, so a new leader whose clock lags does not move
 * replicated time backwards.
 *
 * Callers: the services build a command, call `encodeCommand` (which
 * validates: a bad field throws InvalidArgumentError before any Raft write)
 * and propose the bytes. Apply calls `decodeCommand`, which validates again
 * because the bytes are all it can trust.
 */
import { Packr } from "msgpackr";
import { checkVersionAllows, typeVersion } from "./command-gates.js";
import { InvalidArgumentError, NewerFormatError } from "./errors.js";
import {
  shown,
  validateAddress,
  validateBoolean,
  validateBytes,
  validateCapacity,
  validateEpoch,
  validateGeneration,
  validateIncarnation,
  validateMeetingId,
  validateNodeId,
  validateRegion,
  validateSequence,
  validateUint,
} from "./ids.js";
import { type Labels, validateLabels } from "./labels.js";
import { type ReportLoadCommand, parseReportLoad } from "./load-commands.js";
import type { Liveness } from "./model.js";
import { MOVE_COMMAND_TYPES, type MoveCommand, isMoveCommandType, parseMoveCommand, validateNodeIdOrEmpty } from "./move-commands.js";
import { type NodeLimits, validateLimits } from "./node-load.js";

/** The newest command version this build reads and writes. */
export const NEWEST_COMMAND_VERSION = 3;

/** How the leader stamps a command beside its fields. */
export interface CommandStamp {
  /** The command version to write (the cluster version's). */
  readonly version: number;
  /** The proposing leader's term (written from version 2 on). */
  readonly term: number;
}

const VERSION_1: CommandStamp = { version: 1, term: 0 };

/** A meeting server joins (or rejoins): generation + 1, ALIVE, not draining. */
export interface RegisterCommand {
  readonly type: "register";
  readonly nowMs: number;
  readonly nodeId: string;
  readonly address: string;
  readonly capacity: number;
  readonly region: string;
  readonly labels: Labels;
  /** The registering process's token; absent when it sent none (older agents, older commands). */
  readonly incarnation?: string;
  /** Hard load limits (node-load.ts); absent in older entries: none. */
  readonly limits?: NodeLimits;
}

/** The leader's failure detector changes a node's liveness; DEAD moves its meetings. */
export interface SetLivenessCommand {
  readonly type: "setLiveness";
  readonly nowMs: number;
  readonly nodeId: string;
  /** The generation the detector watched: a later Register makes the command stale. */
  readonly generation: number;
  readonly liveness: Liveness;
}

/** GetRoute(create=true): create-if-absent, placed by placement. */
export interface CreateMeetingCommand {
  readonly type: "createMeeting";
  readonly nowMs: number;
  readonly meetingId: string;
  /** Placement hint; "" for none. */
  readonly region: string;
  /** Label selector the host must match (every key/value). */
  readonly requiredLabels: Labels;
  /** No host may carry any of these key/values; absent in older entries: none. */
  readonly excludedLabels?: Labels;
  /** Chosen when it is eligible; "" or absent: placement decides. */
  readonly preferredNodeId?: string;
}

export interface EndMeetingCommand {
  readonly type: "endMeeting";
  readonly nowMs: number;
  readonly meetingId: string;
}

/** A meeting's state from its owner, fenced by generation and epoch. */
export interface SaveCheckpointCommand {
  readonly type: "saveCheckpoint";
  readonly nowMs: number;
  readonly nodeId: string;
  readonly generation: number;
  readonly meetingId: string;
  readonly epoch: number;
  readonly sequence: number;
  readonly state: Uint8Array;
}

/** No new meetings for the node; with `migrate`, its meetings move now. */
export interface DrainNodeCommand {
  readonly type: "drainNode";
  readonly nowMs: number;
  readonly nodeId: string;
  readonly migrate: boolean;
}

/** Graceful leave: drain with migrate, then forget the node. */
export interface DeregisterCommand {
  readonly type: "deregister";
  readonly nowMs: number;
  readonly nodeId: string;
  readonly generation: number;
}

/**
 * Places unassigned meetings that fit now. Every other command but
 * saveCheckpoint does this too; the leader proposes this one when nothing
 * else would, e.g. when a flapping node's hold-out ends.
 */
export interface PlaceUnassignedCommand {
  readonly type: "placeUnassigned";
  readonly nowMs: number;
}

/** The leader raises the cluster version once every member understands it (formats.ts). Command version 2 on. */
export interface SetClusterVersionCommand {
  readonly type: "setClusterVersion";
  readonly nowMs: number;
  readonly version: number;
}

export type Command =
  | SetClusterVersionCommand
  | RegisterCommand
  | SetLivenessCommand
  | CreateMeetingCommand
  | EndMeetingCommand
  | SaveCheckpointCommand
  | DrainNodeCommand
  | DeregisterCommand
  | PlaceUnassignedCommand
  | ReportLoadCommand
  | MoveCommand;

export type CommandType = Command["type"];

export const COMMAND_TYPES: readonly CommandType[] = [
  "register",
  "setLiveness",
  "createMeeting",
  "endMeeting",
  "saveCheckpoint",
  "drainNode",
  "deregister",
  "placeUnassigned",
  "setClusterVersion",
  "reportLoad",
  ...MOVE_COMMAND_TYPES,
];

const LIVENESS_VALUES: readonly Liveness[] = ["ALIVE", "SUSPECT", "DEAD"];

// Plain maps, no records: every member and every version decodes the same.
// copyBuffers: a checkpoint's bytes must not be a view pinning (or sharing)
// the log entry's buffer.
const packr = new Packr({ useRecords: false, moreTypes: false, copyBuffers: true });

/**
 * Validates and encodes at `stamp.version` (version 1 unless given);
 * throws InvalidArgumentError naming the bad field, FailedPreconditionError
 * for a command or field that version cannot carry (command-gates.ts).
 */
export function encodeCommand(command: Command, stamp: CommandStamp = VERSION_1): Uint8Array {
  checkVersionAllows(command, stamp.version);
  // The envelope's fields written out, not spread from an object: V8 builds
  // `{ ...envelope, ...command }` off its fast path, which cost 7 µs a command.
  const checked = parseCommand(stamp.version >= 2 ? { v: stamp.version, term: stamp.term, ...command } : { v: stamp.version, ...command });
  return packr.pack(stamp.version >= 2 ? { v: stamp.version, term: stamp.term, ...checked } : { v: stamp.version, ...checked });
}

/** Decodes and validates an entry's bytes; throws InvalidArgumentError if they are not a command, NewerFormatError if too new. */
export function decodeCommand(bytes: Uint8Array): Command {
  return decodeStampedCommand(bytes).command;
}

/** A decoded command with its stamp (version 1 commands have term 0). */
export function decodeStampedCommand(bytes: Uint8Array): { readonly command: Command; readonly stamp: CommandStamp } {
  let raw: unknown;
  try {
    raw = packr.unpack(bytes);
  } catch (err) {
    throw new InvalidArgumentError(`command could not be decoded (${bytes.length} bytes)`, { cause: err });
  }
  const command = parseCommand(raw);
  const c = raw as Record<string, unknown>;
  return { command, stamp: { version: c["v"] as number, term: c["v"] === 1 ? 0 : (c["term"] as number) } };
}

/**
 * The command a decoded value stands for, with every field validated and
 * normalised (labels sorted); unknown extra fields are dropped.
 */
export function parseCommand(raw: unknown): Command {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new InvalidArgumentError(`command must be a map, got ${shown(raw)}`);
  }
  const c = raw as Record<string, unknown>;
  const version = c["v"];
  if (typeof version === "number" && Number.isSafeInteger(version) && version > NEWEST_COMMAND_VERSION) {
    throw new NewerFormatError(`command version ${version} is newer than this member reads (1..${NEWEST_COMMAND_VERSION}): the cluster version was raised past this release; run a newer one`);
  }
  if (version !== 1 && version !== 2 && version !== 3) throw new InvalidArgumentError(`command version must be 1, 2 or 3, got ${shown(version)}`);
  if (version >= 2) validateUint(c["term"], "term", 1);
  const type = c["type"];
  const nowMs = validateUint(c["nowMs"], "now_ms");
  // Unknown to an older version: a member of that release refuses it as it would.
  if (COMMAND_TYPES.includes(type as CommandType) && typeVersion(type as CommandType) > version) {
    throw new InvalidArgumentError(`command type ${String(type)} needs command version ${typeVersion(type as CommandType)}`);
  }
  switch (type as CommandType) {
    case "register":
      return {
        type: "register",
        nowMs,
        nodeId: validateNodeId(c["nodeId"]),
        address: validateAddress(c["address"]),
        capacity: validateCapacity(c["capacity"]),
        region: validateRegion(c["region"]),
        labels: validateLabels(c["labels"]),
        ...(c["incarnation"] === undefined || c["incarnation"] === null || c["incarnation"] === "" ? {} : { incarnation: validateIncarnation(c["incarnation"]) }),
        // Version 3 on; an older release ignores the field, and so does its version here.
        ...(version >= 3 ? { limits: validateLimits(c["limits"]) } : {}),
      };
    case "setLiveness":
      return {
        type: "setLiveness",
        nowMs,
        nodeId: validateNodeId(c["nodeId"]),
        generation: validateGeneration(c["generation"]),
        liveness: validateLiveness(c["liveness"]),
      };
    case "createMeeting":
      return {
        type: "createMeeting",
        nowMs,
        meetingId: validateMeetingId(c["meetingId"]),
        region: validateRegion(c["region"]),
        requiredLabels: validateLabels(c["requiredLabels"], "required_labels"),
        ...(version >= 3
          ? { excludedLabels: validateLabels(c["excludedLabels"], "excluded_labels"), preferredNodeId: validateNodeIdOrEmpty(c["preferredNodeId"], "preferred_node_id") }
          : {}),
      };
    case "endMeeting":
      return { type: "endMeeting", nowMs, meetingId: validateMeetingId(c["meetingId"]) };
    case "saveCheckpoint":
      return {
        type: "saveCheckpoint",
        nowMs,
        nodeId: validateNodeId(c["nodeId"]),
        generation: validateGeneration(c["generation"]),
        meetingId: validateMeetingId(c["meetingId"]),
        epoch: validateEpoch(c["epoch"]),
        sequence: validateSequence(c["sequence"]),
        state: validateBytes(c["state"], "state"),
      };
    case "drainNode":
      return { type: "drainNode", nowMs, nodeId: validateNodeId(c["nodeId"]), migrate: validateBoolean(c["migrate"], "migrate") };
    case "deregister":
      return { type: "deregister", nowMs, nodeId: validateNodeId(c["nodeId"]), generation: validateGeneration(c["generation"]) };
    case "placeUnassigned":
      return { type: "placeUnassigned", nowMs };
    case "setClusterVersion":
      return { type: "setClusterVersion", nowMs, version: validateUint(c["version"], "version", 1) };
    case "reportLoad":
      return parseReportLoad(c, nowMs);
    default:
      if (isMoveCommandType(type)) return parseMoveCommand(type, c, nowMs);
      throw new InvalidArgumentError(`command type must be one of ${COMMAND_TYPES.join(", ")}, got ${shown(type)}`);
  }
}

function validateLiveness(value: unknown): Liveness {
  if (!LIVENESS_VALUES.includes(value as Liveness)) {
    throw new InvalidArgumentError(`state must be one of ${LIVENESS_VALUES.join(", ")}, got ${shown(value)}`);
  }
  return value as Liveness;
}
