/**
 * Checks of the routes: what GetRoute (and ListMeetings) answered, what the
 * gateways answered, and who served what.
 *
 * - Linearizable routes (API.md): per meeting, once any GetRoute returned
 *   epoch e, no GetRoute that started later returns an older epoch. Checked
 *   by a sweep in real-time order, and by the linearizability checker
 *   (test/support/linearizability.ts) with the meeting as a register whose
 *   writes are the moves: a chain of cas(e_i -> e_i+1) whose times are
 *   unknown (pending), and whose reads are the answers.
 * - A gateway answers from its route cache, which may lag the coordinator
 *   by a feed batch; what each gateway process must not do is go back on
 *   an epoch it already answered. Answers older than an epoch some other
 *   client had already seen are counted, not judged.
 * - One owner per epoch: everyone who names a node for (meeting, epoch)
 *   (routes, the servers' own assignments and answers) names the same one,
 *   and no two server processes serve it during overlapping spans.
 */
import { type HistoryOp, checkLinearizable } from "../../test/support/linearizability.js";
import type { ClientOp, RouteOp, ServeOp } from "./history.js";
import type { ServerDigest } from "./server-digest.js";

export interface Findings {
  readonly lost: string[];
  readonly violations: string[];
  readonly info: string[];
}

interface Answer {
  readonly call: number;
  readonly ret: number;
  readonly epoch: number;
  readonly what: string;
}

function describe(op: RouteOp): string {
  const who = op.client < 0 ? "the runner" : `client ${op.client}`;
  const via = op.via === "grpc" ? "GetRoute" : `gateway ${op.gateway ?? "?"} /route`;
  return `${who} ${via} [${op.call}, ${op.ret}] -> epoch ${op.route?.epoch} on ${op.route?.nodeId}`;
}

/** Answers that came back older than an answer which had returned before they were asked. */
function backwards(answers: readonly Answer[]): { answer: Answer; seen: Answer }[] {
  const byRet = [...answers].sort((a, b) => a.ret - b.ret);
  const byCall = [...answers].sort((a, b) => a.call - b.call);
  const out: { answer: Answer; seen: Answer }[] = [];
  let i = 0;
  let newest: Answer | undefined;
  for (const b of byCall) {
    while (i < byRet.length && byRet[i]!.ret < b.call) {
      if (!newest || byRet[i]!.epoch > newest.epoch) newest = byRet[i];
      i++;
    }
    if (newest && b.epoch < newest.epoch) out.push({ answer: b, seen: newest });
  }
  return out;
}

function group<T>(items: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const it of items) {
    const k = key(it);
    const list = m.get(k);
    if (list) list.push(it);
    else m.set(k, [it]);
  }
  return m;
}

export function checkRoutes(ops: readonly ClientOp[], digest: ServerDigest): Findings & { checkedMeetings: number; staleGatewayAnswers: number } {
  const lost: string[] = [];
  const violations: string[] = [];
  const info: string[] = [];
  const answered = ops.filter((o): o is RouteOp & { ret: number } => o.kind === "route" && o.route !== undefined && o.ret !== undefined);
  const grpcByMeeting = group(answered.filter((o) => o.via === "grpc"), (o) => o.meetingId);

  for (const [meetingId, list] of grpcByMeeting) {
    const answers = list.map((o) => ({ call: o.call, ret: o.ret, epoch: o.route!.epoch, what: describe(o) }));
    for (const { answer, seen } of backwards(answers)) {
      violations.push(`route of ${meetingId} went back: ${answer.what}, after ${seen.what}`);
    }
    // The same, by the checker: writes are the chain of moves, at unknown times.
    const epochs = [...new Set(answers.map((a) => a.epoch))].sort((a, b) => a - b);
    const history: HistoryOp[] = epochs.map((e, i) => ({
      client: -1,
      call: 0,
      op: { kind: "cas", key: meetingId, expected: i === 0 ? null : String(epochs[i - 1]), value: String(e) },
    }));
    list.forEach((o) => history.push({ client: o.client, call: o.call, ret: o.ret, op: { kind: "read", key: meetingId }, result: { kind: "read", value: String(o.route!.epoch) } }));
    const verdict = checkLinearizable(history, { maxSteps: 200_000 });
    if (verdict.ok === false) violations.push(`routes of ${meetingId} are not linearizable: ${verdict.reason}`);
    else if (verdict.ok === "unknown") info.push(`routes of ${meetingId}: linearizability search gave up (${verdict.reason})`);
  }

  // Gateways: each process keeps to what it answered; lag behind others is counted.
  const viaGateway = answered.filter((o) => o.via === "gateway");
  for (const [key, list] of group(viaGateway.filter((o) => o.gateway !== undefined), (o) => `${o.gateway} ${o.meetingId}`)) {
    const answers = list.map((o) => ({ call: o.call, ret: o.ret, epoch: o.route!.epoch, what: describe(o) }));
    for (const { answer, seen } of backwards(answers)) violations.push(`gateway ${key.split(" ")[0]} went back on meeting ${key.split(" ")[1]}: ${answer.what}, after ${seen.what}`);
  }
  let staleGatewayAnswers = 0;
  for (const [, list] of group(answered, (o) => o.meetingId)) {
    const answers = list.map((o) => ({ call: o.call, ret: o.ret, epoch: o.route!.epoch, what: o.via }));
    staleGatewayAnswers += backwards(answers).filter((b) => b.answer.what === "gateway").length;
  }

  violations.push(...checkOwners(ops, digest, info));
  return { lost, violations, info, checkedMeetings: grpcByMeeting.size, staleGatewayAnswers };
}

/** The runner's server slot of a node id: "m3.25" → "m3". */
function slotOf(nodeId: string): string {
  return nodeId.split(".")[0]!;
}

/** (meeting, epoch) → one node, one serving process; notes get what is explained but worth a line. */
function checkOwners(ops: readonly ClientOp[], digest: ServerDigest, notes: string[]): string[] {
  const owners = new Map<string, Map<string, string>>(); // "m@e" → node → where it was seen first
  const note = (meetingId: string, epoch: number, nodeId: string, where: string): void => {
    const key = `${meetingId}@${epoch}`;
    let nodes = owners.get(key);
    if (!nodes) owners.set(key, (nodes = new Map()));
    if (!nodes.has(nodeId)) nodes.set(nodeId, where);
  };
  const out: string[] = [];
  for (const o of ops) {
    if (o.kind === "route" && o.route) note(o.meetingId, o.route.epoch, o.route.nodeId, o.via === "grpc" ? "GetRoute" : `gateway ${o.gateway ?? ""}`);
    if (o.kind === "serve" && o.served) {
      note(o.meetingId, o.served.epoch, o.served.nodeId, `a request through ${o.gateway}`);
      const s: ServeOp = o;
      if (s.headerNode !== undefined && s.headerNode !== s.served!.nodeId) {
        // A server restarted under a fresh id keeps its address ("m3" then "m3.25"): a gateway whose
        // cache still names the old id reaches the new process, which may hold the meeting by now.
        const sameAddress = slotOf(s.headerNode) === slotOf(s.served!.nodeId);
        (sameAddress ? notes : out).push(`gateway ${s.gateway} said X-Convene-Node ${s.headerNode} for meeting ${s.meetingId}, but ${s.served!.nodeId} answered${sameAddress ? " (the same address under a new node id: a route cache a moment behind)" : ""}`);
      }
    }
  }
  for (const a of digest.assignments) note(a.meetingId, a.epoch, a.nodeId, `${a.nodeId}'s ASSIGNED`);
  // Per (meeting, epoch) and process: the first and last request it served.
  const spans = new Map<string, Map<number, [number, number]>>();
  for (const s of digest.served) {
    note(s.meetingId, s.epoch, s.nodeId, `${s.nodeId}'s own log`);
    const key = `${s.meetingId}@${s.epoch}`;
    let byPid = spans.get(key);
    if (!byPid) spans.set(key, (byPid = new Map()));
    const span = byPid.get(s.pid);
    if (span) span[1] = s.t;
    else byPid.set(s.pid, [s.t, s.t]);
  }
  for (const [key, nodes] of owners) {
    if (nodes.size > 1) out.push(`meeting ${key.replace("@", " epoch ")} has two owners: ${[...nodes].map(([n, where]) => `${n} (${where})`).join(", ")}`);
  }
  // A node id re-registered by a new process may keep an epoch; two processes serving it at the same time may not.
  for (const [key, byPid] of spans) {
    const list = [...byPid].sort((a, b) => a[1][0] - b[1][0]);
    for (let i = 1; i < list.length; i++) {
      const [prevPid, [, prevLast]] = list[i - 1]!;
      const [pid, [first]] = list[i]!;
      if (first <= prevLast) out.push(`meeting ${key.replace("@", " epoch ")} was served by pids ${prevPid} and ${pid} at the same time (until ${prevLast}, from ${first})`);
    }
  }
  return out;
}
