/**
 * Checks of the checkpoints and of the zombies' writes.
 *
 * - Linearizable checkpoints: per meeting, a register whose writes are the
 *   servers' save attempts (value: the attempt's writer id; acknowledged
 *   ones span [attempt, ack], the others may or may not have happened) and
 *   whose reads are GetCheckpoint answers; checked by the linearizability
 *   checker (test/support/linearizability.ts).
 * - Nothing acknowledged is lost: the final checkpoint of a live meeting is
 *   at least the highest acknowledged sequence (the same write when equal);
 *   every move hands the new owner a checkpoint at least as new as every
 *   save acknowledged under an older epoch (such a save committed before
 *   the move: fencing refuses it after); sequences never go back in real
 *   time.
 * - Zombies: a meeting server stopped past its lease and declared dead
 *   gets FAILED_PRECONDITION for every write of its old generation after
 *   SIGCONT (no acknowledgement, ever).
 */
import { type HistoryOp, checkLinearizable } from "../../test/support/linearizability.js";
import type { Findings } from "./check-routes.js";
import type { ZombieWindow } from "./faults.js";
import type { FinalReads } from "./final-state.js";
import type { CheckpointReadOp, ClientOp } from "./history.js";
import type { MeetingInfo } from "./load.js";
import type { Attempt, ServerDigest } from "./server-digest.js";

export interface ZombieStats {
  paused: number;
  declaredDead: number;
  /** Writes of an old generation after SIGCONT: the agent's (periodic and probes) and the raw probes. */
  writes: number;
  acknowledged: number;
  rawProbes: number;
  rawFailedPrecondition: number;
}

type Live = (meetingId: string) => boolean;

function groupBy<T>(items: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const it of items) {
    const list = m.get(key(it));
    if (list) list.push(it);
    else m.set(key(it), [it]);
  }
  return m;
}

export function checkCheckpoints(
  ops: readonly ClientOp[],
  digest: ServerDigest,
  meetings: ReadonlyMap<string, MeetingInfo>,
  final: FinalReads,
): Findings {
  const lost: string[] = [];
  const violations: string[] = [];
  const info: string[] = [];
  const live: Live = (m) => {
    const s = meetings.get(m)?.state;
    return s === "active" || s === "retiring" || s === "creating";
  };
  // Raw probes resend a stored sequence: at best a no-op, so they are not writes here (checkZombies judges them).
  const attemptsByMeeting = groupBy([...digest.attempts.values()].filter((a) => !a.raw), (a) => a.meetingId);
  const readsByMeeting = groupBy(ops.filter((o): o is CheckpointReadOp => o.kind === "checkpoint"), (o) => o.meetingId);
  const endCall = new Map<string, number>();
  for (const o of ops) if (o.kind === "end") endCall.set(o.meetingId, Math.min(endCall.get(o.meetingId) ?? Infinity, o.call));

  for (const meetingId of new Set([...attemptsByMeeting.keys(), ...readsByMeeting.keys()])) {
    const attempts = attemptsByMeeting.get(meetingId) ?? [];
    const acked = attempts.filter((a) => a.ackT !== undefined && a.ackSeq !== undefined).sort((a, b) => a.t - b.t);

    // The register: an ended meeting's checkpoint goes with it, so only reads before the end count.
    const cutoff = endCall.get(meetingId) ?? Infinity;
    const history: HistoryOp[] = [];
    for (const a of attempts) {
      if (a.refused) continue;
      history.push(a.ackT !== undefined ? { client: a.pid, call: a.t, ret: a.ackT, op: { kind: "write", key: meetingId, value: a.w }, result: { kind: "write" } } : { client: a.pid, call: a.t, op: { kind: "write", key: meetingId, value: a.w } });
    }
    for (const r of readsByMeeting.get(meetingId) ?? []) {
      if (r.ret === undefined || r.checkpoint === undefined || r.call >= cutoff || r.ret >= cutoff) continue;
      if (r.checkpoint !== null && r.checkpoint.w === "") continue;
      history.push({ client: 1000 + r.client, call: r.call, ret: r.ret, op: { kind: "read", key: meetingId }, result: { kind: "read", value: r.checkpoint?.w ?? null } });
    }
    const verdict = checkLinearizable(history, { maxSteps: 500_000 });
    if (verdict.ok === false) violations.push(`checkpoints of ${meetingId} are not linearizable: ${verdict.reason}`);
    else if (verdict.ok === "unknown") info.push(`checkpoints of ${meetingId}: linearizability search gave up (${verdict.reason})`);

    // Sequences never go back: a save asked after another was acknowledged stores a higher one.
    for (let i = 0; i < acked.length; i++) {
      for (let j = i + 1; j < acked.length; j++) {
        const [a, b] = [acked[i]!, acked[j]!];
        if (b.t > a.ackT! && b.ackSeq! <= a.ackSeq!) {
          violations.push(`checkpoint sequence of ${meetingId} went back: ${b.w} (epoch ${b.epoch}) stored ${b.ackSeq} after ${a.w} (epoch ${a.epoch}) had stored ${a.ackSeq}`);
        }
      }
    }

    // The final checkpoint of a live meeting holds the newest save acknowledged before it was read
    // (the servers keep saving meanwhile).
    const fin = final.checkpoints.get(meetingId);
    const before = fin ? acked.filter((a) => a.ackT! < fin.call) : [];
    const newest = before.reduce<Attempt | undefined>((best, a) => (!best || a.ackSeq! > best.ackSeq! ? a : best), undefined);
    if (live(meetingId) && newest && fin) {
      if (fin.ret === undefined || fin.checkpoint === undefined) violations.push(`final checkpoint of ${meetingId} could not be read`);
      else if (fin.checkpoint === null) lost.push(`checkpoint of ${meetingId}: seq ${newest.ackSeq} (${newest.w}) was acknowledged, the meeting now has none`);
      else if (fin.checkpoint.seq < newest.ackSeq!) lost.push(`checkpoint of ${meetingId}: seq ${newest.ackSeq} (${newest.w}) was acknowledged, the stored one is seq ${fin.checkpoint.seq}`);
      else if (fin.checkpoint.seq === newest.ackSeq && fin.checkpoint.w !== newest.w) {
        violations.push(`checkpoint of ${meetingId}: seq ${newest.ackSeq} was acknowledged for ${newest.w}, but it holds ${fin.checkpoint.w}`);
      }
    }
  }

  // Every move hands over a checkpoint at least as new as what was acknowledged before it.
  for (const asg of digest.assignments) {
    const cp = asg.checkpoint;
    if (cp && cp.w !== "") {
      const writer = digest.attempts.get(cp.w);
      if (!writer) violations.push(`${asg.nodeId} got meeting ${asg.meetingId} (epoch ${asg.epoch}) with checkpoint ${cp.w}, which no server ever wrote`);
      else if (writer.refused) violations.push(`${asg.nodeId} got meeting ${asg.meetingId} (epoch ${asg.epoch}) with checkpoint ${cp.w}, a write that was refused`);
    }
    const missed = (attemptsByMeeting.get(asg.meetingId) ?? []).filter((a) => a.ackSeq !== undefined && a.epoch < asg.epoch && a.ackSeq > (cp?.seq ?? 0));
    for (const a of missed) {
      lost.push(`checkpoint of ${asg.meetingId}: seq ${a.ackSeq} (${a.w}, epoch ${a.epoch}) was acknowledged, but the move to ${asg.nodeId} at epoch ${asg.epoch} handed over ${cp ? `seq ${cp.seq}` : "none"}`);
    }
  }
  return { lost, violations, info };
}

export function checkZombies(digest: ServerDigest, zombies: readonly ZombieWindow[], meetings: ReadonlyMap<string, MeetingInfo>): Findings & { stats: ZombieStats } {
  const violations: string[] = [];
  const info: string[] = [];
  const stats: ZombieStats = { paused: zombies.length, declaredDead: 0, writes: 0, acknowledged: 0, rawProbes: 0, rawFailedPrecondition: 0 };
  const ended = (m: string): boolean => {
    const s = meetings.get(m)?.state;
    return s === "ending" || s === "ended" || s === "maybe-ended";
  };
  for (const window of zombies) {
    if (!window.declaredDead) {
      violations.push(`${window.nodeId} was stopped for ${((window.contAt - window.stopAt) / 1000).toFixed(1)} s (lease 1.5 s) and never declared dead`);
      continue;
    }
    stats.declaredDead += 1;
    // The generation it had when stopped, as it knew it itself (the runner's ListNodes may have failed).
    const resume = (digest.resumes.get(window.pid) ?? []).find((r) => r.t >= window.contAt - 50);
    if (!resume) info.push(`zombie ${window.nodeId} (pid ${window.pid}) logged no resume after SIGCONT`);
    else if (window.generation !== 0 && resume.generation !== window.generation) {
      info.push(`zombie ${window.nodeId}: ListNodes said generation ${window.generation} before the pause, the server had ${resume.generation}`);
    }
    const z = { ...window, generation: resume?.generation ?? window.generation };
    const name = `zombie ${z.nodeId} (pid ${z.pid}, generation ${z.generation})`;
    for (const a of digest.attempts.values()) {
      if (a.pid !== z.pid || a.t < z.contAt - 50 || a.generation !== z.generation) continue;
      stats.writes += 1;
      if (a.ackT !== undefined) {
        stats.acknowledged += 1;
        violations.push(`${name}: its ${a.raw ? "raw " : ""}save ${a.w} of ${a.meetingId} (epoch ${a.epoch}) after SIGCONT was acknowledged`);
      }
    }
    for (const p of digest.probes) {
      if (p.pid !== z.pid || p.t < z.contAt - 50 || p.generation !== z.generation) continue;
      if (p.via === "agent") {
        // An acknowledged one is among the attempts above (its getState recorded it).
        if (!["ack", "FAILED_PRECONDITION", "NOT_FOUND", "NOT_HELD"].includes(p.result)) info.push(`${name}: agent save of ${p.meetingId} after SIGCONT: ${p.result} (${p.detail})`);
        continue;
      }
      stats.rawProbes += 1;
      // Fencing comes before the sequence check: a refusal for the sequence means the fence let it through.
      if (p.result === "FAILED_PRECONDITION" && p.detail.includes("is lower than the stored")) {
        violations.push(`${name}: raw SaveCheckpoint of ${p.meetingId} (epoch ${p.epoch}) after SIGCONT was refused for its sequence, not fenced (${p.detail})`);
      } else if (p.result === "FAILED_PRECONDITION" || (p.result === "NOT_FOUND" && ended(p.meetingId))) stats.rawFailedPrecondition += 1;
      else if (p.result !== "ack") violations.push(`${name}: raw SaveCheckpoint of ${p.meetingId} (epoch ${p.epoch}) after SIGCONT got ${p.result}, not FAILED_PRECONDITION (${p.detail})`);
    }
  }
  return { lost: [], violations, info, stats };
}
