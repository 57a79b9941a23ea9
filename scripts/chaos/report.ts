/**
 * The end of a run's output: what was done, what was found, and last the
 * summary line, exactly
 *   chaos: <faults> faults, <ops> ops, <lost> lost, <violations> violations
 */
import type { FaultEvent } from "./faults.js";
import type { HealthOutcome } from "./final-state.js";
import type { History } from "./history.js";
import type { MoveRecord } from "./moves.js";
import type { MemberNetwork } from "./network.js";
import type { ChaosOptions } from "./options.js";
import { ALL_FAULT_KINDS } from "./plan.js";
import type { ChaosSecurity } from "./security.js";
import type { ServerDigest } from "./server-digest.js";
import type { Verdict } from "./verdict.js";

const MAX_LISTED = 40;

export interface ReportInput {
  readonly options: ChaosOptions;
  readonly network: MemberNetwork;
  readonly security: ChaosSecurity;
  readonly events: readonly FaultEvent[];
  readonly history: History;
  readonly digest: ServerDigest;
  readonly verdict: Verdict;
  readonly health: HealthOutcome;
  readonly moves: readonly MoveRecord[];
  readonly stalls: readonly { readonly from: number; readonly to: number }[];
  /** ClusterStatus through each member (operatorView). */
  readonly clusterStatus: string;
}

function list(say: (line: string) => void, label: string, items: readonly string[]): void {
  for (const item of items.slice(0, MAX_LISTED)) say(`${label}: ${item}`);
  if (items.length > MAX_LISTED) say(`${label}: ... and ${items.length - MAX_LISTED} more`);
}

export function printReport(say: (line: string) => void, r: ReportInput): void {
  const { verdict, events } = r;
  const byKind = ALL_FAULT_KINDS.map((k) => `${k} ${events.filter((e) => e.kind === k).length}`).join(", ");
  say(`partitions: ${r.network.mechanism}`);
  say(`security: ${r.security.description}`);
  say(`faults by kind: ${byKind}`);
  say(`kill -9: ${events.filter((e) => e.kill9).length}`);
  const w = verdict.worstMove;
  const moved = r.moves.reduce((n, m) => n + m.movedMs.length, 0);
  say(
    w
      ? `worst meeting move: ${(w.worstMs / 1000).toFixed(2)} s (${w.fault}, ${w.meetings} meetings, bound ${(w.boundMs / 1000).toFixed(1)} s${w.overlapped ? ", member fault overlapped" : ""}${w.stalledMs > 0 ? `, machine stalled ${(w.stalledMs / 1000).toFixed(1)} s` : ""}); ${moved} meetings moved after ${r.moves.length} server faults`
      : `worst meeting move: none measured (${r.moves.length} server faults)`,
  );
  const calm = r.moves.filter((m) => !m.overlapped && m.movedMs.length > 0).sort((a, b) => b.worstMs - a.worstMs)[0];
  if (calm && calm !== w) say(`worst meeting move without a member fault overlapping: ${(calm.worstMs / 1000).toFixed(2)} s (${calm.fault}, bound ${(calm.boundMs / 1000).toFixed(1)} s)`);
  if (r.stalls.length > 0) {
    const longest = Math.max(...r.stalls.map((s) => s.to - s.from));
    say(`machine stalls (this process stood still > 0.5 s): ${r.stalls.length}, longest ${(longest / 1000).toFixed(1)} s; added to the move bounds they overlapped`);
  }
  const c = r.history.counts();
  const attempts = r.digest.attempts.size;
  const acked = [...r.digest.attempts.values()].filter((a) => a.ackT !== undefined).length;
  say(`ops: ${c.route} routes, ${c.serve} proxied requests, ${c.checkpoint} checkpoint reads, ${c.end} ends; ${attempts} checkpoint saves attempted by the servers, ${acked} acknowledged`);
  const z = verdict.zombies;
  say(
    `zombies: ${z.paused} meeting servers paused past the lease, ${z.declaredDead} declared dead; ${z.writes} writes of their old generation after SIGCONT, ${z.acknowledged} acknowledged; ` +
      `${z.rawFailedPrecondition} of ${z.rawProbes} raw SaveCheckpoint probes got FAILED_PRECONDITION`,
  );
  say(`linearizability: routes of ${verdict.checkedMeetings} meetings; gateway answers older than an epoch already seen elsewhere (route cache lag, not judged): ${verdict.staleGatewayAnswers}`);
  say(
    `meeting servers declared dead while running (neither killed nor paused by the run): ${verdict.falseDeaths.length}` +
      (verdict.stallDeaths > 0 ? `, and ${verdict.stallDeaths} right after their own event loop stalled (lease ran out)` : ""),
  );
  say(r.health.problems.length === 0 ? `health: ${r.health.summary} (after ${(r.health.waitedMs / 1000).toFixed(1)} s)` : `health: NOT healthy after ${(r.health.waitedMs / 1000).toFixed(1)} s`);
  say(`ClusterStatus (operator view, not judged): ${r.clusterStatus}`);
  if (r.options.verbose) list(say, "note", verdict.info);
  list(say, "LOST", verdict.lost);
  list(say, "VIOLATION", verdict.violations);
  const ops = r.history.ops.length + attempts;
  say(`chaos: ${events.length} faults, ${ops} ops, ${verdict.lost.length} lost, ${verdict.violations.length} violations`);
}
