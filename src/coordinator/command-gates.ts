/**
 * Which command version each command needs (commands.ts), so that a leader
 * never writes a command the members of an older release would apply
 * differently. A command type an older release does not know is refused by
 * its decoder, and a field it does not know is dropped by it: either way
 * it would apply the entry differently from a member that knows them. So:
 *   - setClusterVersion needs command version 2;
 *   - the commands of planned moves, drains with a deadline, undrain,
 *     rebalancing and load reports need version 3, as do limits declared
 *     at register and excluded labels or a preferred node at create.
 * `encodeCommand` refuses (FAILED_PRECONDITION) a command its stamp's
 * version cannot carry: the services propose through it, so a leader below
 * cluster version 3 refuses MoveMeeting, Rebalance, UndrainNode, DrainNode
 * with a deadline, the agent's Drain and HandOver, GetRoute with a
 * preferred node or excluded labels, and Register with limits, and nothing
 * is written. `parseCommand` reads an entry of an older version as that
 * release reads it: an unknown type is refused, an unknown field ignored.
 */
import type { Command, CommandType } from "./commands.js";
import { FailedPreconditionError } from "./errors.js";
import { CLUSTER_VERSIONS } from "./formats.js";

/** Command types that need a version above 1, and the version. */
const TYPE_VERSIONS: Partial<Record<CommandType, number>> = {
  setClusterVersion: 2,
  reportLoad: 3,
  startMove: 3,
  completeMove: 3,
  expireMove: 3,
  rebalance: 3,
  scheduleDrain: 3,
  drainDue: 3,
  undrain: 3,
};

/** The first command version that knows `type` (1 for the types of every release). */
export function typeVersion(type: CommandType): number {
  return TYPE_VERSIONS[type] ?? 1;
}

/** The version `command` needs, with what needs it in words (for the refusal); version 1 needs nothing. */
export function versionNeeded(command: Command): { readonly version: number; readonly what: string } {
  const byType = typeVersion(command.type);
  if (byType > 1) return { version: byType, what: `command ${command.type}` };
  if (command.type === "register" && command.limits && Object.values(command.limits).some((v) => v !== 0)) {
    return { version: 3, what: "limits declared at register" };
  }
  if (command.type === "createMeeting" && command.excludedLabels && command.excludedLabels.length > 0) {
    return { version: 3, what: "excluded labels for a new meeting" };
  }
  if (command.type === "createMeeting" && command.preferredNodeId) return { version: 3, what: "a preferred node for a new meeting" };
  return { version: 1, what: "" };
}

/** The first cluster version whose commands are written at `commandVersion` or later. */
function clusterVersionWriting(commandVersion: number): number {
  return CLUSTER_VERSIONS.find((v) => v.formats.command >= commandVersion)?.version ?? commandVersion;
}

/** Throws FailedPreconditionError when `command` needs a newer command version than `stampVersion`. */
export function checkVersionAllows(command: Command, stampVersion: number): void {
  const needed = versionNeeded(command);
  if (needed.version > stampVersion) requireClusterVersion(clusterVersionWriting(stampVersion), clusterVersionWriting(needed.version), needed.what);
}

/** Throws FailedPreconditionError, naming `what` and both versions, when `current` is below `needed`. */
export function requireClusterVersion(current: number, needed: number, what: string): void {
  if (current >= needed) return;
  throw new FailedPreconditionError(
    `${what} needs cluster version ${needed}, and the cluster runs at cluster version ${current}: it is raised by itself once every member runs a release that understands it (convene status shows it); nothing was changed`,
  );
}
