/**
 * The newest formats this build reads and writes: what a member advertises
 * in MemberAdmin.Status, so that the leader raises the cluster version
 * only once every member understands it (src/coordinator/formats.ts).
 */
import { NEWEST_COMMAND_VERSION } from "../coordinator/commands.js";
import type { Formats } from "../coordinator/formats.js";
import { NEWEST_SNAPSHOT_FORMAT } from "../coordinator/state-snapshot.js";
import { WIRE_FORMAT } from "../raft-runtime/message-codec.js";

export const ADVERTISED_FORMATS: Formats = { wire: WIRE_FORMAT, command: NEWEST_COMMAND_VERSION, snapshot: NEWEST_SNAPSHOT_FORMAT };
