/**
 * How each operator command shows what the cluster answered: an aligned
 * table (or key/value lines) for people, and for `--json` the response
 * with proto field names, enum numbers replaced by their names and
 * checkpoint bytes by their size, so scripts never see enum numbers.
 * Pure functions of the decoded responses (proto-loader with keepCase,
 * longs as Number, enums as Number, defaults filled in).
 */
import { formatFields, formatTable } from "./table.js";
import { formatDuration } from "../node-agent/index.js";

export interface Rendered {
  readonly text: string;
  readonly json: unknown;
}

const NODE_STATES = ["NODE_STATE_UNSPECIFIED", "ALIVE", "SUSPECT", "DEAD", "DRAINING"] as const;
const MEMBER_ROLES = ["MEMBER_ROLE_UNSPECIFIED", "LEADER", "FOLLOWER", "CANDIDATE", "LEARNER"] as const;

/** An enum number's name; a number this build does not know stays visible as one. */
function enumName(names: readonly string[], value: number): string {
  return names[value] ?? String(value);
}

export const nodeStateName = (value: number): string => enumName(NODE_STATES, value);
export const memberRoleName = (value: number): string => enumName(MEMBER_ROLES, value);

const yesNo = (b: boolean): string => (b ? "yes" : "no");
const time = (ms: number): string => (ms > 0 ? new Date(ms).toISOString() : "-");
const orDash = (s: string): string => (s === "" ? "-" : s);

export interface MemberFormats {
  wire: number;
  command: number;
  snapshot: number;
}

export interface MemberInfo {
  id: string;
  address: string;
  role: number;
  commit_index: number;
  applied_index: number;
  reachable: boolean;
  /** Unset while the member does not answer (and from a release before cluster versions). */
  formats?: MemberFormats | null;
}

export interface ClusterStatus {
  leader_id: string;
  term: number;
  members: MemberInfo[];
  /** 0 from a release before cluster versions. */
  cluster_version?: number;
}

/** "w1 c2 s3": the newest wire, command and snapshot formats a member understands. */
const formatsText = (f: MemberFormats | null | undefined): string => (f ? `w${f.wire} c${f.command} s${f.snapshot}` : "-");

export function renderClusterStatus(s: ClusterStatus): Rendered {
  const members = s.members.map((m) => ({ ...m, role: memberRoleName(m.role) }));
  const table = formatTable(
    ["MEMBER", "ADDRESS", "ROLE", "COMMIT", "APPLIED", "REACHABLE", "FORMATS"],
    members.map((m) => [m.id, m.address, m.role, String(m.commit_index), String(m.applied_index), yesNo(m.reachable), formatsText(m.formats)]),
  );
  const version = s.cluster_version ? `, cluster version ${s.cluster_version}` : "";
  return {
    text: `leader ${s.leader_id || "(none)"}, term ${s.term}${version}\n\n${table}`,
    json: { leader_id: s.leader_id, term: s.term, cluster_version: s.cluster_version ?? 0, members },
  };
}

export interface LoadFiguresInfo {
  cpu: number;
  net_in_bytes_per_sec: number;
  net_out_bytes_per_sec: number;
  participants: number;
}

export interface NodeInfo {
  node_id: string;
  address: string;
  capacity: number;
  region: string;
  labels: Record<string, string>;
  state: number;
  meetings: number;
  generation: number;
  /** Absent from members of an older version. */
  limits?: LoadFiguresInfo | null;
  load?: (LoadFiguresInfo & { reported_at_ms: number }) | null;
  drain_deadline_ms?: number;
}

const megabytes = (n: number): string => `${(n / 1e6).toFixed(1)}`;

/** "0.42 (max 0.80)", "-" when nothing was reported. */
function figure(value: number, limit: number, show: (n: number) => string, reported: boolean): string {
  if (!reported) return "-";
  return limit > 0 ? `${show(value)}/${show(limit)}` : show(value);
}

export function renderNodes(r: { nodes: NodeInfo[] }): Rendered {
  const nodes = [...r.nodes].sort((a, b) => a.node_id.localeCompare(b.node_id)).map((n) => ({ ...n, state: nodeStateName(n.state) }));
  const text =
    nodes.length === 0
      ? "no meeting servers registered\n"
      : formatTable(
          ["NODE", "ADDRESS", "STATE", "MEETINGS", "REGION", "GENERATION", "CPU", "IN MB/S", "OUT MB/S", "PEOPLE", "HANDS OVER AT"],
          nodes.map((n) => {
            const reported = (n.load?.reported_at_ms ?? 0) > 0;
            const l = n.load ?? { cpu: 0, net_in_bytes_per_sec: 0, net_out_bytes_per_sec: 0, participants: 0 };
            const lim = n.limits ?? { cpu: 0, net_in_bytes_per_sec: 0, net_out_bytes_per_sec: 0, participants: 0 };
            return [
              n.node_id,
              n.address,
              n.state,
              `${n.meetings}/${n.capacity}`,
              orDash(n.region),
              String(n.generation),
              figure(l.cpu, lim.cpu, (x) => x.toFixed(2), reported),
              figure(l.net_in_bytes_per_sec, lim.net_in_bytes_per_sec, megabytes, reported),
              figure(l.net_out_bytes_per_sec, lim.net_out_bytes_per_sec, megabytes, reported),
              figure(l.participants, lim.participants, String, reported),
              time(n.drain_deadline_ms ?? 0),
            ];
          }),
        );
  return { text, json: { nodes } };
}

export interface Route {
  meeting_id: string;
  node_id: string;
  address: string;
  epoch: number;
  created: boolean;
}

export function renderMeetings(r: { meetings: Route[] }, nodeFilter: string): Rendered {
  const meetings = [...r.meetings].sort((a, b) => a.meeting_id.localeCompare(b.meeting_id));
  const text =
    meetings.length === 0
      ? `no meetings${nodeFilter ? ` on ${nodeFilter}` : ""}\n`
      : formatTable(
          ["MEETING", "NODE", "ADDRESS", "EPOCH"],
          meetings.map((m) => [m.meeting_id, m.node_id, m.address, String(m.epoch)]),
        );
  return { text, json: { meetings: meetings.map(({ meeting_id, node_id, address, epoch }) => ({ meeting_id, node_id, address, epoch })) } };
}

export function renderRoute(r: Route): Rendered {
  return {
    text: formatFields([
      ["meeting", r.meeting_id],
      ["node", r.node_id],
      ["address", r.address],
      ["epoch", String(r.epoch)],
      ["created", yesNo(r.created)],
    ]),
    json: r,
  };
}

export interface Checkpoint {
  meeting_id: string;
  node_id: string;
  epoch: number;
  sequence: number;
  state: Uint8Array;
  saved_at_ms: number;
}

/** Metadata and size only: the state is the meeting server's, opaque and possibly large. */
export function renderCheckpoint(c: Checkpoint): Rendered {
  const json = {
    meeting_id: c.meeting_id,
    node_id: c.node_id,
    epoch: c.epoch,
    sequence: c.sequence,
    size_bytes: c.state.length,
    saved_at_ms: c.saved_at_ms,
  };
  return {
    text: formatFields([
      ["meeting", c.meeting_id],
      ["saved by", c.node_id],
      ["epoch", String(c.epoch)],
      ["sequence", String(c.sequence)],
      ["size", `${c.state.length} bytes`],
      ["saved at", time(c.saved_at_ms)],
    ]),
    json,
  };
}

export interface AuditEntry {
  index: number;
  kind: string;
  now_ms: number;
  ok: boolean;
  code: string;
  summary: string;
  /** The proposing leader's term; 0 before cluster version 2. */
  term?: number;
}

export function renderAuditLog(r: { entries: AuditEntry[] }): Rendered {
  const text =
    r.entries.length === 0
      ? "the audit log is empty\n"
      : formatTable(
          ["INDEX", "TERM", "TIME", "KIND", "OK", "CODE", "SUMMARY"],
          r.entries.map((e) => [String(e.index), e.term ? String(e.term) : "-", time(e.now_ms), e.kind, yesNo(e.ok), orDash(e.code), e.summary]),
        );
  return { text, json: r };
}

/** MemberAdmin's StatusResponse: one member's view of the group. */
export interface MemberStatus {
  id: string;
  role: string;
  term: number;
  leader_id: string;
  leader_address: string;
  commit_index: number;
  applied_index: number;
  last_index: number;
  snapshot_index: number;
  voters: string[];
  learners: string[];
  rss_bytes: number;
  heap_used_bytes: number;
  heap_total_bytes: number;
  array_buffers_bytes: number;
  cluster_id?: string;
  formats?: MemberFormats | null;
  cluster_version?: number;
  metrics_address?: string;
}

/** After a membership change: what happened, then the group as it is now. */
export function renderMembership(done: string, s: MemberStatus): Rendered {
  const list = (ids: string[]): string => (ids.length === 0 ? "(none)" : [...ids].sort().join(", "));
  return {
    text: `${done}\n${formatFields([
      ["leader", s.leader_id || "(none)"],
      ["voters", list(s.voters)],
      ["learners", list(s.learners)],
    ])}`,
    json: s,
  };
}

/** DrainNode's answer: meetings moved by the call, and those still on the node. */
export interface DrainResult {
  moved: number;
  stayed: number;
}

const meetingsWord = (n: number): string => `${n} meeting${n === 1 ? "" : "s"}`;

/**
 * What a drain did, from the node as it was before (`before`, ListNodes)
 * and the counts DrainNode returned: a dead node has nothing to move (its
 * meetings moved when it died), one already draining only moves what
 * --migrate finds now.
 */
export function renderDrain(before: NodeInfo, migrate: boolean, r: DrainResult, deadlineMs = 0): Rendered {
  const id = before.node_id;
  const state = nodeStateName(before.state);
  const json = { node_id: id, state_before: state, draining: true, migrate, ...(deadlineMs > 0 ? { deadline_ms: deadlineMs } : {}), moved: r.moved, stayed: r.stayed };
  let text: string;
  if (deadlineMs > 0) {
    text = `${id} is draining: no new meetings; in ${formatDuration(deadlineMs)} the meetings still there are handed over (\`convene undrain ${id}\` puts it back)`;
  } else if (state === "DEAD" && r.moved === 0 && r.stayed === 0) {
    text = `${id} is dead: its meetings moved when it was declared dead, so nothing moved now. It is marked draining, which it forgets if it registers again`;
  } else {
    const was = state === "DRAINING" ? `${id} was already draining` : `${id} is draining: it gets no new meetings`;
    if (!migrate) {
      text = `${was}; its ${meetingsWord(r.stayed)} stay until they end (--migrate moves them now)`;
    } else if (r.moved === 0 && r.stayed === 0) {
      text = `${was}; it held no meetings, so none moved`;
    } else {
      text = `${was}; moved ${meetingsWord(r.moved)} to other servers`;
      if (r.stayed > 0) text += `; ${meetingsWord(r.stayed)} stayed: no other server has room for them`;
    }
  }
  return { text: `${text}\n`, json };
}
