/**
 * Each member's log of what the replicated state did: one line per change
 * an operator follows, with the same field names on every member and in
 * every line (meetingId, nodeId, epoch, generation, term, index), so that
 * `grep '"meetingId":"room-1"'` over the members' logs tells one meeting's
 * history, and `grep '"nodeId":"m2"'` one meeting server's. Moves, ends,
 * liveness changes and registrations are logged at info; a meeting's first
 * placement and a revocation at debug, built only when debug is on. What an
 * outcome does not name (the node of a drain, a checkpoint's meeting) is
 * logged by the leader's service handlers, with the same field names.
 */
import type { Logger } from "pino";
import type { ApplyOutcome } from "../command-results.js";

export function logApplied(logger: Pick<Logger, "info" | "debug" | "isLevelEnabled">, outcome: ApplyOutcome, term: number): void {
  const { result, index, events } = outcome;
  if (!result.ok) return;
  const at = { term, index };
  switch (result.type) {
    case "register":
      logger.info({ nodeId: result.nodeId, generation: result.generation, ...at }, "node registered");
      break;
    case "setLiveness":
      if (result.changed) logger.info({ nodeId: result.nodeId, liveness: result.liveness, moved: result.moved, unassigned: result.unassigned, ...at }, "node liveness changed");
      break;
    case "endMeeting":
      logger.info({ meetingId: result.meetingId, ...at }, "meeting ended");
      break;
    case "setClusterVersion":
      if (result.changed) logger.info({ clusterVersion: result.version, ...at }, "cluster version raised");
      break;
    default:
      break;
  }
  const revokedFrom = new Map<string, string>();
  for (const e of events) {
    if (e.type === "REVOKED") {
      revokedFrom.set(e.meetingId, e.nodeId);
      if (logger.isLevelEnabled("debug")) logger.debug({ meetingId: e.meetingId, nodeId: e.nodeId, epoch: e.epoch, ...at }, "meeting revoked");
    } else if (e.epoch > 1) {
      const from = revokedFrom.get(e.meetingId);
      logger.info({ meetingId: e.meetingId, nodeId: e.nodeId, epoch: e.epoch, ...(from ? { from } : {}), sequence: e.checkpoint?.sequence ?? 0, ...at }, "meeting moved");
    } else if (logger.isLevelEnabled("debug")) {
      logger.debug({ meetingId: e.meetingId, nodeId: e.nodeId, epoch: e.epoch, ...at }, "meeting assigned");
    }
  }
}
