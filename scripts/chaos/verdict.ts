/**
 * Every check of a finished run, in one verdict: lost writes, violations,
 * and notes. Pure: it reads what the run recorded (history, server logs,
 * fault records, final reads, health) and decides nothing else.
 */
import { type ZombieStats, checkCheckpoints, checkZombies } from "./check-checkpoints.js";
import { checkRoutes } from "./check-routes.js";
import type { ZombieWindow } from "./faults.js";
import type { FinalReads, HealthOutcome } from "./final-state.js";
import type { ClientOp } from "./history.js";
import type { MeetingInfo } from "./load.js";
import type { MoveRecord } from "./moves.js";
import type { ServerDigest } from "./server-digest.js";

export interface RunRecord {
  readonly ops: readonly ClientOp[];
  readonly digest: ServerDigest;
  readonly meetings: ReadonlyMap<string, MeetingInfo>;
  readonly final: FinalReads;
  readonly zombies: readonly ZombieWindow[];
  readonly moves: readonly MoveRecord[];
  readonly health: HealthOutcome;
  /** Faults that could not complete, and processes that exited by themselves. */
  readonly failures: readonly string[];
  readonly crashes: readonly string[];
}

export interface Verdict {
  readonly lost: string[];
  readonly violations: string[];
  readonly info: string[];
  readonly zombies: ZombieStats;
  readonly worstMove: MoveRecord | undefined;
  readonly staleGatewayAnswers: number;
  readonly checkedMeetings: number;
  /**
   * Meeting servers declared dead (fenced, registered again) while running:
   * not in a pause of ours, not right after their own event loop stalled.
   * Each is a violation: a live node that heartbeats is never declared dead.
   */
  readonly falseDeaths: string[];
  /** The same after a stall of the server's own event loop (a loaded machine): the lease ran out. */
  readonly stallDeaths: number;
}

export function judge(run: RunRecord): Verdict {
  const routes = checkRoutes(run.ops, run.digest);
  const checkpoints = checkCheckpoints(run.ops, run.digest, run.meetings, run.final);
  const zombies = checkZombies(run.digest, run.zombies, run.meetings);
  const lost = [...routes.lost, ...checkpoints.lost];
  const violations = [...routes.violations, ...checkpoints.violations, ...zombies.violations];
  const info = [...routes.info, ...checkpoints.info, ...zombies.info];

  // Meetings: an acknowledged one is still there; an ended one stays ended.
  const newestEpoch = new Map<string, number>();
  for (const o of run.ops) if (o.kind === "route" && o.route) newestEpoch.set(o.meetingId, Math.max(newestEpoch.get(o.meetingId) ?? 0, o.route.epoch));
  for (const [id, m] of run.meetings) {
    const fin = run.final.routes.get(id);
    if (!fin) continue;
    if (m.state === "active" || m.state === "retiring") {
      const newest = newestEpoch.get(id) ?? 0;
      if (fin.notFound) lost.push(`meeting ${id} (acknowledged, last seen at epoch ${newest}) is gone`);
      else if (!fin.route) violations.push(`meeting ${id}: the final GetRoute failed (${fin.error ?? "no answer"})`);
    } else if (m.state === "ended" && fin.route) {
      // The workload ends a meeting only after RETIRE_QUIET_MS without a call that could create it.
      violations.push(`meeting ${id} was ended (EndMeeting acknowledged, no create-capable call for 10 s before) but GetRoute routes it again, to ${fin.route.nodeId} at epoch ${fin.route.epoch}`);
    }
  }

  // Moves: each dead server's meetings moved, within the bound.
  for (const m of run.moves) {
    if (m.unmoved.length > 0) violations.push(`${m.fault}: ${m.unmoved.length} of ${m.meetings} meetings never moved (${m.unmoved.slice(0, 5).join(", ")})`);
    else if (m.worstMs > m.boundMs) violations.push(`${m.fault}: a meeting took ${(m.worstMs / 1000).toFixed(2)} s to move (bound ${(m.boundMs / 1000).toFixed(1)} s${m.overlapped ? ", a member fault overlapped" : ""}${m.stalledMs > 0 ? `, ${(m.stalledMs / 1000).toFixed(1)} s of machine stall` : ""})`);
  }
  const worstMove = run.moves.filter((m) => m.movedMs.length > 0).sort((a, b) => b.worstMs - a.worstMs)[0];

  for (const p of run.health.problems) violations.push(`unhealthy after the faults stopped: ${p}`);
  for (const f of run.failures) violations.push(`fault did not complete: ${f}`);
  for (const c of run.crashes) violations.push(`process exited by itself: ${c}`);
  for (const o of run.digest.orphanAcks) info.push(`ack without a matching attempt: ${o}`);

  const falseDeaths: string[] = [];
  let stallDeaths = 0;
  const usedZombie = new Set<ZombieWindow>();
  for (const r of run.digest.reregistrations) {
    const zombie = run.zombies.find((z) => z.pid === r.pid && !usedZombie.has(z) && r.t >= z.contAt - 50 && r.t <= z.contAt + 15_000);
    if (zombie) {
      usedZombie.add(zombie); // the one registration a zombie must make
      continue;
    }
    const stalled = (run.digest.resumes.get(r.pid) ?? []).some((x) => x.t <= r.t + 50 && x.t >= r.t - 5000);
    if (stalled) stallDeaths += 1;
    else falseDeaths.push(`${r.nodeId} (pid ${r.pid}) at ${new Date(r.t).toISOString()}: ${r.reason.slice(0, 200)}`);
  }
  for (const d of falseDeaths) violations.push(`declared dead while running: ${d}`);
  return {
    lost,
    violations,
    info,
    zombies: zombies.stats,
    worstMove,
    staleGatewayAnswers: routes.staleGatewayAnswers,
    checkedMeetings: routes.checkedMeetings,
    falseDeaths,
    stallDeaths,
  };
}
