/**
 * `reportLoad`: the leader writes the load figures its heartbeats carried
 * into the replicated state, so placement (which runs in apply) reads the
 * same figures on every member. One command carries many nodes' figures;
 * the leader sends one only when some figure moved enough to matter
 * (service/load-reports.ts). Each report is fenced by the generation the
 * heartbeat carried: figures of an older incarnation are dropped.
 */
import { InvalidArgumentError } from "./errors.js";
import { shown, validateGeneration, validateNodeId } from "./ids.js";
import { type LoadFigures, figuresToString, validateFigures } from "./node-load.js";
import type { CoordinatorState } from "./state.js";

/** Reports one command may carry. */
export const MAX_LOAD_REPORTS = 5_000;

export interface LoadReport extends LoadFigures {
  readonly nodeId: string;
  readonly generation: number;
}

export interface ReportLoadCommand {
  readonly type: "reportLoad";
  readonly nowMs: number;
  readonly reports: readonly LoadReport[];
}

export interface ReportLoadResult {
  readonly ok: true;
  readonly type: "reportLoad";
  readonly written: number;
  /** Reports of nodes unknown, dead, or at another generation. */
  readonly dropped: number;
}

export function parseReportLoad(c: Record<string, unknown>, nowMs: number): ReportLoadCommand {
  const raw = c["reports"];
  if (!Array.isArray(raw) || raw.length > MAX_LOAD_REPORTS) {
    throw new InvalidArgumentError(`reports must be a list of at most ${MAX_LOAD_REPORTS} load reports, got ${Array.isArray(raw) ? raw.length : shown(raw)}`);
  }
  const reports = raw.map((r: unknown, i): LoadReport => {
    const field = `reports[${i}]`;
    const figures = validateFigures(r, field);
    const m = r as Record<string, unknown>;
    return { nodeId: validateNodeId(m["nodeId"], `${field}.node_id`), generation: validateGeneration(m["generation"], `${field}.generation`), ...figures };
  });
  return { type: "reportLoad", nowMs, reports };
}

export function applyReportLoad(state: CoordinatorState, c: ReportLoadCommand): { result: ReportLoadResult; summary: string } {
  let written = 0;
  let dropped = 0;
  const parts: string[] = [];
  for (const r of c.reports) {
    const node = state.nodes.get(r.nodeId);
    if (!node || node.generation !== r.generation || node.liveness === "DEAD") {
      dropped++;
      continue;
    }
    const { cpuPermille, netInBytesPerSec, netOutBytesPerSec, participants } = r;
    node.load = { cpuPermille, netInBytesPerSec, netOutBytesPerSec, participants, reportedAtMs: state.clockMs };
    state.nodeChanged(node);
    written++;
    if (parts.length < 5) parts.push(`${r.nodeId}: ${figuresToString(r)}`);
  }
  const more = written > parts.length ? `; and ${written - parts.length} more` : "";
  return {
    result: { ok: true, type: "reportLoad", written, dropped },
    summary: `${written} nodes${dropped ? `, ${dropped} dropped` : ""}${parts.length ? `: ${parts.join("; ")}${more}` : ""}`,
  };
}
