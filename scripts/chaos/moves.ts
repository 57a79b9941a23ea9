/**
 * How long a dead meeting server's meetings take to move: from the fault
 * (kill -9 or SIGSTOP) until a linearizable read (Coordinator.ListMeetings)
 * shows each of them under a higher epoch (a new tenure, on another node or
 * on the same one after it registered again), or gone (ended).
 *
 * The bound is the lease plus a slack; when a member fault overlapped the
 * wait, an election and the new leader's full lease come on top, and so
 * does any time the machine stood still (StallMonitor).
 */
import type { ChaosCluster } from "./cluster.js";
import type { History, RouteOp } from "./history.js";
import type { RouteMessage } from "./rpc.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const LEASE_MS = 1500;
/** Extra allowance when a member fault overlapped: an election and a fresh lease from the new leader. */
export const OVERLAP_ALLOWANCE_MS = 6000;
const POLL_MS = 100;
const GIVE_UP_MS = 30_000;

export interface MoveRecord {
  readonly server: string;
  readonly fault: string;
  readonly faultAt: number;
  readonly meetings: number;
  /** Per meeting that moved: ms from the fault to the first read that showed the move. */
  readonly movedMs: readonly number[];
  readonly unmoved: readonly string[];
  readonly worstMs: number;
  readonly boundMs: number;
  readonly overlapped: boolean;
  /** Time the machine stood still during the wait (added to the bound). */
  readonly stalledMs: number;
}

/** The meetings a node holds now, meeting id → epoch (a linearizable read); undefined when no member answered. */
export async function meetingsOn(cluster: ChaosCluster, nodeId: string): Promise<Map<string, number> | undefined> {
  try {
    const res = await cluster.rpc.any<{ meetings: RouteMessage[] }>("Coordinator", shuffled(cluster.coordinatorAddresses()), "ListMeetings", { node_id: nodeId }, 1500);
    return new Map(res.meetings.map((r) => [r.meeting_id, r.epoch]));
  } catch {
    return undefined;
  }
}

function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/**
 * Polls until every meeting of `before` moved (or GIVE_UP_MS). Each read is
 * also recorded in the History as a GetRoute-like observation of the
 * watched meetings (it is a linearizable read too).
 */
export async function watchMoves(
  cluster: ChaosCluster,
  history: History,
  server: string,
  fault: string,
  faultAt: number,
  before: ReadonlyMap<string, number>,
  memberFaultActive: () => boolean,
  /** Whether the workload ended (or may have ended) the meeting: then its absence is no failure to move. */
  ended: (meetingId: string) => boolean,
  slackMs: number,
  stalled: (from: number, to: number) => number,
): Promise<MoveRecord> {
  const pending = new Map(before);
  const movedMs: number[] = [];
  let overlapped = memberFaultActive();
  while (pending.size > 0 && Date.now() - faultAt < GIVE_UP_MS) {
    await sleep(POLL_MS);
    overlapped ||= memberFaultActive();
    const call = Date.now();
    let routes: RouteMessage[];
    try {
      routes = (await cluster.rpc.any<{ meetings: RouteMessage[] }>("Coordinator", shuffled(cluster.coordinatorAddresses()), "ListMeetings", { node_id: "" }, 1000)).meetings;
    } catch {
      continue;
    }
    const ret = Date.now();
    const now = new Map(routes.map((r) => [r.meeting_id, r]));
    for (const [meetingId, epoch] of [...pending]) {
      const r = now.get(meetingId);
      if (r && r.node_id !== "") {
        history.add<RouteOp>({ kind: "route", client: -1, via: "grpc", meetingId, create: false, call, ret, route: { nodeId: r.node_id, epoch: r.epoch } });
      }
      // Moved: a new tenure. Gone from the list: ended by the workload, or waiting unassigned (not moved).
      if (r && r.node_id !== "" && r.epoch > epoch) {
        movedMs.push(ret - faultAt);
        pending.delete(meetingId);
      } else if (!r && ended(meetingId)) {
        pending.delete(meetingId);
      }
    }
  }
  const worstMs = movedMs.length === 0 ? 0 : Math.max(...movedMs);
  const stalledMs = stalled(faultAt, faultAt + Math.max(worstMs, pending.size > 0 ? GIVE_UP_MS : 0));
  const boundMs = LEASE_MS + slackMs + (overlapped ? OVERLAP_ALLOWANCE_MS : 0) + stalledMs;
  return {
    server,
    fault,
    faultAt,
    meetings: before.size,
    movedMs,
    unmoved: [...pending.keys()],
    worstMs,
    boundMs,
    overlapped,
    stalledMs,
  };
}
