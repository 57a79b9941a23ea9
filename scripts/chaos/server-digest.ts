/**
 * The meeting servers' logs turned into what the checks need: every
 * checkpoint write attempted (with its outcome where known), every
 * assignment received, every request served, every zombie probe.
 *
 * Pairing rule: the agent keeps at most one save per meeting in flight and
 * calls getState right before sending, so in one process an 'ack' for a
 * meeting belongs to the latest 'attempt' for that meeting (same epoch).
 */
import type { CheckpointSeen, ServerRecord } from "./server-log.js";

export interface Attempt {
  readonly w: string;
  readonly meetingId: string;
  readonly epoch: number;
  readonly generation: number;
  readonly t: number;
  readonly nodeId: string;
  readonly pid: number;
  readonly raw: boolean;
  /** The sequence sent, known for raw probes only (the agent allocates its own). */
  readonly seq?: number;
  /** When the save was acknowledged, and the sequence stored. */
  ackT?: number;
  ackSeq?: number;
  /** Certainly not applied: a raw probe answered FAILED_PRECONDITION at its first and only try. */
  refused?: boolean;
}

export interface Assignment {
  readonly nodeId: string;
  readonly pid: number;
  readonly meetingId: string;
  readonly epoch: number;
  readonly t: number;
  readonly checkpoint: CheckpointSeen | null;
}

export interface Served {
  readonly nodeId: string;
  readonly pid: number;
  readonly meetingId: string;
  readonly epoch: number;
  readonly t: number;
}

export interface Probe {
  readonly nodeId: string;
  readonly pid: number;
  readonly via: "agent" | "raw";
  readonly meetingId: string;
  readonly epoch: number;
  readonly generation: number;
  readonly t: number;
  readonly result: string;
  readonly detail: string;
}

export interface ServerDigest {
  readonly attempts: Map<string, Attempt>;
  readonly assignments: Assignment[];
  readonly served: Served[];
  readonly probes: Probe[];
  /** pid → the resumes it logged (stops of its event loop), with the generation it had before. */
  readonly resumes: Map<number, { t: number; generation: number }[]>;
  /** Acks that matched no attempt: the pairing rule was broken. */
  readonly orphanAcks: string[];
  /** Every registration again (the node was fenced: declared dead, or its generation replaced). */
  readonly reregistrations: { readonly nodeId: string; readonly pid: number; readonly t: number; readonly reason: string }[];
}

export function digestServerLogs(logs: readonly (readonly ServerRecord[])[]): ServerDigest {
  const d: ServerDigest = { attempts: new Map(), assignments: [], served: [], probes: [], resumes: new Map(), orphanAcks: [], reregistrations: [] };
  for (const records of logs) {
    const start = records.find((r) => r.k === "start");
    if (!start || start.k !== "start") continue;
    const { node: nodeId, pid } = start;
    const latest = new Map<string, Attempt>();
    for (const r of records) {
      switch (r.k) {
        case "attempt": {
          const a: Attempt = { w: r.w, meetingId: r.m, epoch: r.e, generation: r.gen, t: r.t, nodeId, pid, raw: r.raw === true, seq: r.seq };
          d.attempts.set(r.w, a);
          if (!a.raw) latest.set(r.m, a);
          break;
        }
        case "ack": {
          const a = latest.get(r.m);
          if (a && a.epoch === r.e && a.ackT === undefined) {
            a.ackT = r.t;
            a.ackSeq = r.seq;
          } else {
            d.orphanAcks.push(`${nodeId} (pid ${pid}) ack of ${r.m} epoch ${r.e} seq ${r.seq} at ${r.t}`);
          }
          break;
        }
        case "probe": {
          d.probes.push({ nodeId, pid, via: r.via, meetingId: r.m, epoch: r.e, generation: r.gen, t: r.t, result: r.result, detail: r.detail ?? "" });
          const a = r.via === "raw" ? d.attempts.get(r.w) : undefined;
          if (a && r.result === "ack") {
            a.ackT = r.tEnd;
            a.ackSeq = a.seq;
          }
          if (a && r.result === "FAILED_PRECONDITION" && r.tries === 1) a.refused = true;
          break;
        }
        case "assigned":
          d.assignments.push({ nodeId, pid, meetingId: r.m, epoch: r.e, t: r.t, checkpoint: r.cp });
          break;
        case "served":
          d.served.push({ nodeId, pid, meetingId: r.m, epoch: r.e, t: r.t });
          break;
        case "resume":
          if (!d.resumes.has(pid)) d.resumes.set(pid, []);
          d.resumes.get(pid)!.push({ t: r.t, generation: r.gen });
          break;
        case "reregistered":
          d.reregistrations.push({ nodeId, pid, t: r.t, reason: r.reason });
          break;
        case "start":
        case "registered":
        case "revoked":
        case "error":
          break;
        default:
          throw new Error(`invariant: unknown server record ${JSON.stringify(r satisfies never)}`);
      }
    }
  }
  return d;
}
