/**
 * Runs the fault plan (plan.ts) against the cluster: two lanes side by
 * side, each one fault at a time, until the deadline. One line per fault
 * goes to `say` ("+12.3s kill -9 member n2 (leader), restart after 1.2 s").
 *
 * A pause of a meeting server (a zombie) holds the member lane too, so the
 * zombie's writes meet a cluster with a quorum and their answers are the
 * coordinator's verdict, not an outage. The zombie windows, the move
 * measurements and any fault that could not complete are kept for checks.
 */
import type { ChaosCluster, EdgeEntry } from "./cluster.js";
import type { History } from "./history.js";
import { type MoveRecord, meetingsOn, watchMoves } from "./moves.js";
import { type FaultKind, type Lane, type PlannedFault, laneFaults } from "./plan.js";
import { replaceMember } from "./replacement.js";
import type { NodeInfoMessage } from "./rpc.js";
import { freshNodeId } from "./security.js";
import { readServerLog } from "./server-log.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A pause lasts until the server is declared dead, but no longer than this. */
export const PAUSE_SERVER_MAX_MS = 10_000;
/** After SIGCONT the zombie gets this long to probe and register again before the lanes go on. */
const ZOMBIE_AFTERMATH_MS = 2500;
/** Flap damping (coordinator state config): the 4th death within 10 minutes holds a node out of placement. */
const FLAP_DEATHS = 4;
const FLAP_WINDOW_MS = 10 * 60_000;

export interface FaultEvent {
  readonly atMs: number;
  readonly kind: FaultKind;
  readonly line: string;
  /** Whether this fault sent a kill -9. */
  readonly kill9: boolean;
}

export interface ZombieWindow {
  readonly nodeId: string;
  readonly pid: number;
  /** The generation it was registered under when stopped. */
  readonly generation: number;
  readonly stopAt: number;
  readonly contAt: number;
  /** Whether the coordinator declared it dead (or fenced its generation) before SIGCONT. */
  readonly declaredDead: boolean;
}

class Mutex {
  private tail = Promise.resolve();
  async lock(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((r) => (release = r));
    const previous = this.tail;
    this.tail = previous.then(() => next);
    await previous;
    return release;
  }
}

export class FaultRunner {
  readonly events: FaultEvent[] = [];
  readonly zombies: ZombieWindow[] = [];
  readonly moves: Promise<MoveRecord>[] = [];
  /** Faults that could not complete: the product did not recover as it must. */
  readonly failures: string[] = [];
  private readonly memberLane = new Mutex();
  private memberFaults = 0;
  private readonly deaths = new Map<string, number[]>();

  constructor(
    private readonly cluster: ChaosCluster,
    private readonly history: History,
    private readonly startedAt: number,
    private readonly say: (line: string) => void,
    private readonly verbose: (line: string) => void,
    private readonly endedMeeting: (meetingId: string) => boolean,
    private readonly stalled: (from: number, to: number) => number,
  ) {}

  /** Runs both lanes until `deadline` (faults in progress finish). */
  async run(deadline: number): Promise<void> {
    await Promise.all((["members", "edge"] as const).map((lane) => this.lane(lane, deadline)));
  }

  private async lane(lane: Lane, deadline: number): Promise<void> {
    const { seed, meanGapMs } = this.cluster.options;
    for (const fault of laneFaults(seed, lane, meanGapMs)) {
      await sleep(Math.min(fault.gapMs, Math.max(0, deadline - Date.now())));
      if (Date.now() >= deadline) return;
      const holdsMembers = lane === "members" || fault.kind === "pause-server";
      const release = holdsMembers ? await this.memberLane.lock() : () => undefined;
      if (lane === "members") this.memberFaults += 1;
      try {
        await this.execute(fault);
      } catch (err) {
        this.failures.push(`${fault.kind} (${lane} #${fault.index}): ${(err as Error).message}`);
        this.say(`${this.stamp()} fault ${fault.kind} failed: ${(err as Error).message}`);
      } finally {
        if (lane === "members") this.memberFaults -= 1;
        release();
      }
    }
  }

  memberFaultActive(): boolean {
    return this.memberFaults > 0;
  }

  private stamp(): string {
    return `+${((Date.now() - this.startedAt) / 1000).toFixed(1)}s`;
  }

  private record(kind: FaultKind, text: string, kill9: boolean): void {
    const line = `${this.stamp()} ${text}`;
    this.events.push({ atMs: Date.now() - this.startedAt, kind, line, kill9 });
    this.say(line);
  }

  private execute(f: PlannedFault): Promise<void> {
    switch (f.kind) {
      case "kill-leader":
      case "kill-follower":
        return this.killMember(f);
      case "pause-leader":
        return this.pauseLeader(f);
      case "isolate-member":
        return this.isolate(f);
      case "partition-leader":
        return this.partitionLeader(f);
      case "cut-link":
        return this.cutLink(f);
      case "replace-member":
        return this.replace(f);
      case "kill-server":
        return this.killServer(f);
      case "pause-server":
        return this.pauseServer(f);
      case "kill-gateway":
        return this.killGateway(f);
      default:
        throw new Error(`invariant: unknown fault ${JSON.stringify(f.kind satisfies never)}`);
    }
  }

  private liveMembers(): string[] {
    return [...this.cluster.members.values()].filter((m) => m.child?.alive).map((m) => m.id).sort();
  }

  /** The leader (waiting a little for one), or a member picked by `pick` when none answers. */
  private async leaderOr(pick: number): Promise<{ id: string; role: string }> {
    const leader = await this.cluster.waitForLeader(5000);
    if (leader) return { id: leader, role: "leader" };
    const live = this.liveMembers();
    return { id: live[pick % live.length]!, role: "no leader known" };
  }

  private async followerOr(pick: number): Promise<{ id: string; role: string; leader: string | undefined }> {
    const leader = await this.cluster.waitForLeader(5000);
    const followers = this.liveMembers().filter((id) => id !== leader);
    return { id: followers[pick % followers.length]!, role: leader ? "follower" : "no leader known", leader };
  }

  private async restartMember(id: string): Promise<void> {
    const child = this.cluster.startMember(id);
    await this.cluster.waitUntil(`member ${id} serving after restart`, Date.now() + 30_000, async () => (await this.cluster.memberStatus(id)) !== undefined, child);
  }

  private async killMember(f: PlannedFault): Promise<void> {
    const target = f.kind === "kill-leader" ? await this.leaderOr(f.pick) : await this.followerOr(f.pick);
    this.record(f.kind, `kill -9 member ${target.id} (${target.role}), restart after ${(f.durationMs / 1000).toFixed(1)} s`, true);
    await this.cluster.members.get(target.id)!.child!.kill9();
    await sleep(f.durationMs);
    await this.restartMember(target.id);
  }

  private async pauseLeader(f: PlannedFault): Promise<void> {
    const target = await this.leaderOr(f.pick);
    const child = this.cluster.members.get(target.id)!.child!;
    this.record(f.kind, `SIGSTOP member ${target.id} (${target.role}) for ${(f.durationMs / 1000).toFixed(1)} s, then SIGCONT`, false);
    child.pause();
    try {
      await sleep(f.durationMs);
    } finally {
      child.resume();
    }
  }

  private async isolate(f: PlannedFault): Promise<void> {
    const leader = await this.cluster.waitForLeader(5000);
    const live = this.liveMembers();
    const id = live[f.pick % live.length]!;
    const how = this.cluster.network.mechanism === "network namespaces" ? "its link down" : "its peer proxies cut";
    this.record(f.kind, `isolate member ${id} (${id === leader ? "leader" : "follower"}, ${how}) for ${(f.durationMs / 1000).toFixed(1)} s`, false);
    try {
      await this.cluster.network.isolate(this.cluster.members.get(id)!.slot);
      await sleep(f.durationMs);
    } finally {
      await this.cluster.network.healAll();
    }
  }

  private async partitionLeader(f: PlannedFault): Promise<void> {
    const target = await this.leaderOr(f.pick);
    const others = this.liveMembers().filter((id) => id !== target.id);
    this.record(f.kind, `partition member ${target.id} (${target.role}) from ${others.join(", ")} for ${(f.durationMs / 1000).toFixed(1)} s (clients still reach it)`, false);
    const slot = this.cluster.members.get(target.id)!.slot;
    try {
      for (const id of others) await this.cluster.network.cutLink(slot, this.cluster.members.get(id)!.slot);
      await sleep(f.durationMs);
    } finally {
      await this.cluster.network.healAll();
    }
  }

  private async cutLink(f: PlannedFault): Promise<void> {
    const { id, leader } = await this.followerOr(f.pick);
    const other = leader ?? this.liveMembers().find((m) => m !== id)!;
    this.record(f.kind, `cut link ${other}${leader ? " (leader)" : ""} <-> ${id} for ${(f.durationMs / 1000).toFixed(1)} s (both still reach the rest)`, false);
    try {
      await this.cluster.network.cutLink(this.cluster.members.get(other)!.slot, this.cluster.members.get(id)!.slot);
      await sleep(f.durationMs);
    } finally {
      await this.cluster.network.healAll();
    }
  }

  private async replace(f: PlannedFault): Promise<void> {
    const leader = await this.cluster.waitForLeader(5000);
    const live = this.liveMembers();
    const victim = live[f.pick % live.length]!;
    const newId = this.cluster.newMemberId();
    this.record(f.kind, `kill -9 member ${victim} (${victim === leader ? "leader" : "follower"}) and wipe its disk; replace it with ${newId} (join, members add, promote, remove)`, true);
    await replaceMember(this.cluster, victim, newId, f.durationMs, (line) => this.verbose(`${this.stamp()}   ${line}`));
  }

  /**
   * The server `pick` names among those holding meetings now (a server
   * with none, e.g. just restarted, would test no move); all when no
   * member answers or none holds any.
   */
  private async pickServer(pick: number): Promise<EdgeEntry> {
    let candidates = this.cluster.servers;
    try {
      const res = await this.cluster.rpc.any<{ nodes: NodeInfoMessage[] }>("Coordinator", this.cluster.coordinatorAddresses(), "ListNodes", {}, 1000);
      const holding = new Set(res.nodes.filter((n) => n.meetings > 0 && n.state === 1).map((n) => n.node_id));
      const busy = this.cluster.servers.filter((s) => holding.has(s.nodeId));
      if (busy.length > 0) candidates = busy;
    } catch {
      // no answer: any server
    }
    return candidates[pick % candidates.length]!;
  }

  private noteDeath(nodeId: string, at: number): void {
    const list = (this.deaths.get(nodeId) ?? []).filter((t) => t > at - FLAP_WINDOW_MS);
    list.push(at);
    this.deaths.set(nodeId, list);
  }

  /**
   * Restarts a server; under a fresh node id when its id is now held out by
   * flap damping. Deaths: the kills of this run, and every registration
   * again in the id's logs (a pause of ours, or the coordinator declaring
   * it dead on its own).
   */
  private async restartServer(s: EdgeEntry): Promise<void> {
    const since = Date.now() - FLAP_WINDOW_MS;
    const kills = (this.deaths.get(s.nodeId) ?? []).filter((t) => t > since).length;
    const fenced = s.logs
      .map(readServerLog)
      .filter((records) => records[0]?.k === "start" && records[0].node === s.nodeId)
      .flat()
      .filter((r) => r.k === "reregistered" && r.t > since).length;
    if (kills + fenced >= FLAP_DEATHS) {
      const old = s.nodeId;
      const fresh = freshNodeId(s.name, s.freshIds + 1);
      if (!this.cluster.security.hasAgentToken(fresh)) throw new Error(`${old} is held out by flap damping, and the fresh node id ${fresh} has no agent token in this run's tokens file`);
      s.freshIds += 1;
      s.nodeId = fresh;
      this.verbose(`${this.stamp()}   ${old} died ${kills + fenced} times in 10 min (held out by flap damping): restarting as ${s.nodeId}`);
    }
    const child = this.cluster.startServer(s);
    await this.cluster.waitUntil(`server ${s.nodeId} registered`, Date.now() + 30_000, () => this.cluster.serverRegistered(s), child);
  }

  private watch(s: EdgeEntry, fault: string, at: number, before: Map<string, number>): void {
    this.moves.push(
      watchMoves(this.cluster, this.history, s.nodeId, fault, at, before, () => this.memberFaultActive(), this.endedMeeting, this.cluster.options.moveSlackMs, this.stalled),
    );
  }

  private async killServer(f: PlannedFault): Promise<void> {
    const s = await this.pickServer(f.pick);
    const before = (await meetingsOn(this.cluster, s.nodeId)) ?? new Map<string, number>();
    const at = Date.now();
    this.record(f.kind, `kill -9 meeting server ${s.nodeId} (${before.size} meetings), restart after ${(f.durationMs / 1000).toFixed(1)} s`, true);
    await s.child!.kill9();
    this.noteDeath(s.nodeId, at);
    this.watch(s, `kill -9 ${s.nodeId}`, at, before);
    await sleep(f.durationMs);
    await this.restartServer(s);
  }

  private async nodeInfo(nodeId: string): Promise<NodeInfoMessage | undefined> {
    try {
      const res = await this.cluster.rpc.any<{ nodes: NodeInfoMessage[] }>("Coordinator", this.cluster.coordinatorAddresses(), "ListNodes", {}, 1000);
      return res.nodes.find((n) => n.node_id === nodeId);
    } catch {
      return undefined;
    }
  }

  private async pauseServer(f: PlannedFault): Promise<void> {
    const s = await this.pickServer(f.pick);
    const child = s.child!;
    const info = await this.nodeInfo(s.nodeId);
    const before = (await meetingsOn(this.cluster, s.nodeId)) ?? new Map<string, number>();
    const stopAt = Date.now();
    this.record(f.kind, `SIGSTOP meeting server ${s.nodeId} (${before.size} meetings) until declared dead (at least ${(f.durationMs / 1000).toFixed(1)} s), then SIGCONT: a zombie`, false);
    child.pause();
    this.watch(s, `SIGSTOP ${s.nodeId}`, stopAt, before);
    let declaredDead = false;
    try {
      while (Date.now() - stopAt < PAUSE_SERVER_MAX_MS) {
        await sleep(200);
        const now = await this.nodeInfo(s.nodeId);
        declaredDead ||= now !== undefined && (now.state === 3 || (info !== undefined && now.generation !== info.generation));
        if (declaredDead && Date.now() - stopAt >= f.durationMs) break;
      }
    } finally {
      child.resume();
    }
    const contAt = Date.now();
    this.zombies.push({ nodeId: s.nodeId, pid: child.pid, generation: info?.generation ?? 0, stopAt, contAt, declaredDead });
    this.verbose(`${this.stamp()}   SIGCONT ${s.nodeId} after ${((contAt - stopAt) / 1000).toFixed(1)} s (declared dead: ${declaredDead})`);
    await sleep(ZOMBIE_AFTERMATH_MS);
  }

  private async killGateway(f: PlannedFault): Promise<void> {
    const g = this.cluster.gateways[f.pick % this.cluster.gateways.length]!;
    this.record(f.kind, `kill -9 gateway ${g.name}, restart after ${(f.durationMs / 1000).toFixed(1)} s`, true);
    await g.child!.kill9();
    await sleep(f.durationMs);
    const child = this.cluster.startGateway(g);
    await this.cluster.waitUntil(`gateway ${g.name} listening`, Date.now() + 30_000, async () => {
      try {
        await (await fetch(`http://${g.address}/healthz`, { signal: AbortSignal.timeout(1000) })).arrayBuffer();
        return true;
      } catch {
        return false;
      }
    }, child);
  }
}
