/**
 * Apply of setClusterVersion (formats.ts): the cluster version only grows.
 * A version this build does not know cannot be applied as the members that
 * proposed it do (they write formats this one cannot read): the member
 * stops rather than diverge. A version at or below the current one changes
 * nothing (a repeated proposal, or one from a leader that knew less).
 */
import type { SetClusterVersionResult } from "./command-results.js";
import type { SetClusterVersionCommand } from "./commands.js";
import { type CommandFailure, NewerFormatError } from "./errors.js";
import { NEWEST_CLUSTER_VERSION } from "./formats.js";
import type { CoordinatorState } from "./state.js";

export function applySetClusterVersion(state: CoordinatorState, c: SetClusterVersionCommand): { result: SetClusterVersionResult | CommandFailure; summary: string } {
  if (c.version > NEWEST_CLUSTER_VERSION) {
    throw new NewerFormatError(`cluster version ${c.version} is newer than this member knows (1..${NEWEST_CLUSTER_VERSION}): run a newer release`);
  }
  const before = state.clusterVersion;
  if (c.version <= before) {
    return { result: { ok: true, type: "setClusterVersion", version: before, changed: false }, summary: `cluster version ${c.version}: unchanged at ${before}` };
  }
  state.clusterVersion = c.version;
  return { result: { ok: true, type: "setClusterVersion", version: c.version, changed: true }, summary: `cluster version ${before} → ${c.version}` };
}
