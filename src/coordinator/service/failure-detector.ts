/**
 * The leader's failure detector. Heartbeats are not Raft writes: the leader
 * keeps them in memory and proposes only changes of liveness. A node whose
 * connection breaks (its last open watch stream on any member closed, as
 * the members report it: node-streams.ts) is suspect a third of a grace
 * later (a report of the stream that replaced it may be that far behind),
 * and dead once the grace is over unless it is heard on time (within a heartbeat
 * interval, see ON_TIME_SLACK) until a stream opens again; a node that
 * goes silent with its connections open is dead when its lease runs out.
 * A new leader gives every node a full lease before judging it, and trusts
 * "no stream left" only after that first lease: until every member has
 * told it which streams it holds, a closed stream may not be the node's
 * last.
 *
 * Silence from most nodes at once is taken as this member's own trouble,
 * not theirs: an overloaded leader (heartbeats queued faster than it can
 * read them) or one cut off from the nodes sees every lease run out
 * together, and declaring them all dead makes every node register again,
 * which overloads it further (the scale benchmark collapsed that way). So
 * when more than `massSilenceFraction` of the live nodes (and at least
 * `massSilenceMinNodes`) are overdue in one check, none of them is judged
 * by its lease. Broken connections still count: a crashed server closes
 * them, and that is no sign of the leader's health. Kubernetes' node
 * lifecycle controller stops evictions on a "full disruption" for the
 * same reason.
 *
 * A leader that is merely saturated hears every node a little late, not
 * most of them far too late: given its event loop's busy share, it
 * stretches the timeouts it judges silence by (local-health.ts) while it
 * is saturated, so its own slowness is not taken for theirs. When it has
 * room again the stretch is kept for one stretched lease more: the beats
 * it had not read yet when it relaxed are still arriving, and shrinking
 * the lease at once declared a third of 10,000 live servers dead in one
 * check (BENCHMARKS.md, scale, session 14).
 *
 * It checks when a verdict can next change, not on a fixed beat: after
 * each check it sleeps until the earliest time one of the rules below
 * could hold for some node (at least `checkEveryMs`, at most a heartbeat
 * interval, so its own load is still read that often), and sooner when a
 * connection breaks or the replicated nodes change (`stateChanged`): a
 * node registering or changing liveness changes which rules apply to it.
 * Nothing else moves a deadline earlier (a heartbeat only moves its
 * node's later; meetings and checkpoints are not judged), so no verdict
 * falls later than with polling every `checkEveryMs`, an idle leader
 * wakes a few times a second, not twenty, and a busy one does not list
 * every node twenty times a second while it writes meetings.
 */
import { DeadlineTimer } from "../../time/deadline-timer.js";
import { type Scheduler, realScheduler } from "../../time/scheduler.js";
import type { StateMachineNotice } from "../coordinator-state-machine.js";
import type { Liveness } from "../model.js";
import type { CoordinatorReplica } from "./coordinator-replica.js";
import { LocalHealth, type LocalHealthOptions } from "./local-health.js";
import { type StreamReport, type StreamReportAnswer, StreamTable } from "./node-streams.js";

export interface FailureDetectorOptions {
  readonly leaseTtlMs: number;
  readonly heartbeatIntervalMs: number;
  /** After a disconnect, how long a node has to reconnect before it is declared dead. */
  readonly disconnectGraceMs: number;
  /** The shortest sleep between two checks: how late past its deadline a verdict may fall. */
  readonly checkEveryMs: number;
  /** Default 0.5: see the class comment. */
  readonly massSilenceFraction?: number;
  /** Default 3: with fewer overdue nodes, each is judged on its own. */
  readonly massSilenceMinNodes?: number;
  readonly onError?: (err: unknown) => void;
  /** Told of every liveness change this detector proposes by its own judgement, with why. */
  readonly onJudged?: (judged: Judgement) => void;
  /** Told when mass silence starts (overdue, live) and when it ends (0, live). */
  readonly onMassSilence?: (overdue: number, live: number) => void;
  /**
   * The share of wall time this process's event loop was busy since the
   * previous call (0..1), read once per heartbeat interval; without it the
   * timeouts are never stretched (local-health.ts).
   */
  readonly loopBusyShare?: () => number;
  readonly localHealth?: LocalHealthOptions;
  /** Told when the timeouts' multiplier changes, with the busy share that changed it. */
  readonly onLocalHealth?: (multiplier: number, busyShare: number) => void;
}

interface Seen {
  generation: number;
  atMs: number;
  /** When its last connection broke, if it has not been heard since. */
  disconnectedAtMs?: number;
}

/** Which rule judged a node, for tests and the knobs below. */
export type Verdict = "broken" | "disconnected" | "expired" | "late";

/** A liveness change the detector proposes, with what it knew: for the log, so a death can be explained. */
export interface Judgement {
  readonly nodeId: string;
  readonly generation: number;
  readonly liveness: Liveness;
  readonly verdict: Verdict;
  /** Since the node was last heard by this leader (undefined: never in this term). */
  readonly heardAgoMs: number | undefined;
  /** Since its last stream closed, when it has none open. */
  readonly disconnectedAgoMs: number | undefined;
  readonly leadingForMs: number;
  readonly openStreams: number;
  /** What the timeouts were stretched by (local-health.ts): 1 unless this leader was saturated. */
  readonly timeoutMultiplier: number;
}

/**
 * Bugs the simulation must catch, planted on purpose (all off in
 * production): each names the rule it breaks.
 */
export interface DetectorBugs {
  /** Any closed stream suspects its node, whatever its other streams (the false deaths this file prevents). */
  readonly anyStreamCloseSuspects?: boolean;
  /** A member that leads again judges by what it heard in its earlier term, with no fresh lease. */
  readonly noFreshLease?: boolean;
  /** A saturated leader shrinks its timeouts instead of stretching them (judges its own slowness as the nodes'). */
  readonly saturationShrinksTimeouts?: boolean;
}

/** The results of the only commands that add nodes or change a node's generation or liveness. */
const NODE_RESULTS: ReadonlySet<string> = new Set(["register", "setLiveness", "deregister"]);

/** Whether the judged part of the state (nodes, their generations and liveness) may have changed; a refused command changes none. */
function changesNodes(notice: StateMachineNotice): boolean {
  if (notice.kind === "restored") return true;
  const { result } = notice.outcome;
  return result.ok && NODE_RESULTS.has(result.type);
}

/** A heartbeat is on time when it comes within this many heartbeat intervals of the previous one. */
export const ON_TIME_SLACK = 1.2;

export class FailureDetector {
  private readonly seen = new Map<string, Seen>();
  private readonly streams = new StreamTable();
  private readonly wake: DeadlineTimer;
  private leading = false;
  private leaderSinceMs = 0;
  /** Before this, a node's last stream closing may be news only to this leader: see the class comment. */
  private streamsKnownFromMs = 0;
  /** Liveness proposals in flight, so a slow commit is not proposed twice. */
  private readonly proposing = new Set<string>();
  private inMassSilence = false;
  private readonly health: LocalHealth;
  private lastBusyReadMs = 0;
  /** The stretch kept after the multiplier came down, and until when. */
  private heldMultiplier = 1;
  private heldUntilMs = 0;

  constructor(
    private readonly coordinator: CoordinatorReplica,
    private readonly options: FailureDetectorOptions,
    private readonly scheduler: Scheduler = realScheduler,
    private readonly bugs: DetectorBugs = {},
  ) {
    this.health = new LocalHealth(options.localHealth);
    this.wake = new DeadlineTimer(scheduler, (dueAtMs) => this.check(dueAtMs));
  }

  /** What the timeouts are stretched by now (1 unless this leader is saturated or was within a stretched lease). */
  get timeoutMultiplier(): number {
    return this.multiplierAt(this.scheduler.now());
  }

  private multiplierAt(now: number): number {
    return now < this.heldUntilMs ? Math.max(this.health.multiplier, this.heldMultiplier) : this.health.multiplier;
  }

  /** This member became leader: judge nobody before a full lease from now. */
  startLeading(): void {
    this.stopLeading();
    const now = this.scheduler.now();
    const stale = this.bugs.noFreshLease && this.leaderSinceMs > 0;
    this.leaderSinceMs = stale ? this.leaderSinceMs : now;
    this.streamsKnownFromMs = stale ? 0 : now + this.options.leaseTtlMs;
    this.lastBusyReadMs = now;
    // Starts the first window now: how busy it was as a follower says nothing of leading.
    this.options.loopBusyShare?.();
    this.leading = true;
    this.checkSoon();
  }

  stopLeading(): void {
    this.leading = false;
    this.wake.cancel();
    // What a later term needs it learns afresh (members resync their streams).
    if (!this.bugs.noFreshLease) this.seen.clear();
    this.streams.clear();
    this.proposing.clear();
    this.health.reset();
    this.heldMultiplier = 1;
    this.heldUntilMs = 0;
  }

  /**
   * A member's report of the watch streams it holds (its own, when this
   * member holds them). A node with a stream open anywhere was just heard;
   * one whose last stream closed is disconnected. The answer asks for the
   * member's whole table when one of its reports is missing.
   */
  streamsReported(report: StreamReport): StreamReportAnswer {
    if (this.bugs.anyStreamCloseSuspects) {
      for (const c of report.counts) (c.open > 0 ? this.heard(c.nodeId, c.generation) : this.disconnected(c.nodeId, c.generation));
      return { resync: false };
    }
    const { opened, closed, resync } = this.streams.apply(report);
    for (const n of opened) this.heard(n.nodeId, n.generation);
    for (const n of closed) this.disconnected(n.nodeId, n.generation);
    return { resync };
  }

  /** The replicated state changed: when its nodes did, they may now be judged by other rules. */
  stateChanged(notice: StateMachineNotice): void {
    if (this.leading && changesNodes(notice)) this.checkSoon();
  }

  private checkSoon(): void {
    this.wake.wakeAt(this.scheduler.now() + this.options.checkEveryMs);
  }

  /** Open streams of a node generation on every member, as reported to this leader. */
  openStreams(nodeId: string, generation: number): number {
    return this.streams.openStreams(nodeId, generation);
  }

  /** A heartbeat (or a fresh watch stream) from `nodeId` at `generation`. */
  heard(nodeId: string, generation: number): void {
    const before = this.seen.get(nodeId);
    // Heard, but with no stream open anywhere it stays disconnected: it must
    // then be heard on time (see check()).
    const stillBroken =
      before && before.generation === generation && !this.bugs.anyStreamCloseSuspects && this.streams.openStreams(nodeId, generation) === 0
        ? before.disconnectedAtMs
        : undefined;
    this.seen.set(nodeId, stillBroken === undefined ? { generation, atMs: this.scheduler.now() } : { generation, atMs: this.scheduler.now(), disconnectedAtMs: stillBroken });
    const node = this.coordinator.local().getNode(nodeId);
    if (this.leading && node && node.generation === generation && node.liveness === "SUSPECT") {
      this.propose(nodeId, generation, "ALIVE");
    }
  }

  /** The node's last connection broke: suspect now, dead after the grace unless it is heard again. */
  disconnected(nodeId: string, generation: number): void {
    const node = this.coordinator.local().getNode(nodeId);
    // A broken stream of an older incarnation says nothing about the
    // current one (it re-registered and has its own stream): recording it
    // would erase what was heard from the current generation.
    if (!node || node.generation !== generation) return;
    const s = this.seen.get(nodeId);
    const now = this.scheduler.now();
    const heardAt = s && s.generation === generation ? s.atMs : now;
    // Within its first lease a leader may not yet know every stream: the
    // node is judged by its lease alone until then.
    if (now < this.streamsKnownFromMs) return;
    this.seen.set(nodeId, { generation, atMs: heardAt, disconnectedAtMs: now });
    // Suspected at the next checks (check()), not at once: the report of a
    // stream that replaced this one may be a few milliseconds behind.
    if (this.leading) this.checkSoon();
  }

  /**
   * A gateway could not reach the node. Only a hint: a node heard from
   * within the last heartbeat interval is left alone (the gateway may be the
   * one in trouble); one that has missed a heartbeat is treated as
   * disconnected, so it is dead after the grace unless it is heard again.
   */
  upstreamFailed(nodeId: string): void {
    const node = this.coordinator.local().getNode(nodeId);
    if (!this.leading || !node || node.liveness !== "ALIVE") return;
    const s = this.seen.get(nodeId);
    const heardAt = s && s.generation === node.generation ? s.atMs : this.leaderSinceMs;
    if (this.scheduler.now() - heardAt > this.options.heartbeatIntervalMs * this.timeoutMultiplier) this.disconnected(nodeId, node.generation);
  }

  private check(dueAtMs: number): void {
    const now = this.scheduler.now();
    const { checkEveryMs } = this.options;
    if (now - dueAtMs > Math.max(3 * checkEveryMs, 200)) {
      // This process was paused (GC, a large snapshot, a loaded machine):
      // heartbeats that arrived meanwhile are still queued, so silence says
      // nothing about the nodes. Judge nobody before a full lease from now,
      // as after an election.
      this.leaderSinceMs = now;
      this.checkSoon();
      return;
    }
    this.readLocalHealth(now);
    const stretch = this.multiplierAt(now);
    const m = this.bugs.saturationShrinksTimeouts ? 1 / stretch : stretch;
    const leaseTtlMs = this.options.leaseTtlMs * m;
    const heartbeatIntervalMs = this.options.heartbeatIntervalMs * m;
    const { disconnectGraceMs } = this.options;
    const verdicts: { nodeId: string; generation: number; verdict: Verdict }[] = [];
    let live = 0;
    // When to look next: when the first of the comparisons below turns (each
    // is "more than", so a millisecond after its deadline), and by the next
    // reading of this process's own load.
    let next = this.lastBusyReadMs + this.options.heartbeatIntervalMs;
    const turnsAt = (deadline: number) => {
      if (deadline >= now && deadline + 1 < next) next = deadline + 1;
    };
    turnsAt(this.heldUntilMs);
    for (const node of this.coordinator.local().listNodes()) {
      if (node.liveness === "DEAD") continue;
      live++;
      const s = this.seen.get(node.nodeId);
      const heardAt = s && s.generation === node.generation ? s.atMs : 0;
      // Since this member leads, or since it last heard the node, whichever is later.
      const last = Math.max(heardAt, this.leaderSinceMs);
      const brokeAt = s && s.generation === node.generation ? s.disconnectedAtMs : undefined;
      const { nodeId, generation } = node;
      turnsAt(last + leaseTtlMs);
      turnsAt(last + 2 * heartbeatIntervalMs);
      if (brokeAt !== undefined) {
        turnsAt(brokeAt + disconnectGraceMs);
        turnsAt(brokeAt + disconnectGraceMs / 3);
        turnsAt(last + heartbeatIntervalMs * ON_TIME_SLACK);
      }
      // With no connection left, a node must be heard within a heartbeat
      // interval (and a little): one that heartbeats on time is never
      // declared dead, whatever its streams do, while a crashed one is dead
      // a grace after its connection broke, or as soon as it is late.
      if (
        brokeAt !== undefined &&
        now - brokeAt > disconnectGraceMs &&
        (now - last > heartbeatIntervalMs * ON_TIME_SLACK || this.bugs.anyStreamCloseSuspects === true) &&
        brokeAt >= this.leaderSinceMs
      ) {
        verdicts.push({ nodeId, generation, verdict: "broken" });
      } else if (brokeAt !== undefined && heardAt <= brokeAt && now - brokeAt > disconnectGraceMs / 3 && node.liveness === "ALIVE") {
        verdicts.push({ nodeId, generation, verdict: "disconnected" });
      } else if (now - last > leaseTtlMs) {
        verdicts.push({ nodeId, generation, verdict: "expired" });
      } else if (node.liveness === "ALIVE" && now - last > 2 * heartbeatIntervalMs) {
        verdicts.push({ nodeId, generation, verdict: "late" });
      }
    }
    const overdue = verdicts.filter((v) => v.verdict === "expired" || v.verdict === "late").length;
    const massSilence = overdue >= (this.options.massSilenceMinNodes ?? 3) && overdue > live * (this.options.massSilenceFraction ?? 0.5);
    const silenceEnded = this.inMassSilence && !massSilence;
    if (massSilence !== this.inMassSilence) {
      this.inMassSilence = massSilence;
      this.options.onMassSilence?.(massSilence ? overdue : 0, live);
    }
    if (silenceEnded) {
      // Those heard again reached this leader first; the rest are likely a
      // moment behind them (after an election, a whole client process may
      // still be asking the old leader). A full lease from now for every
      // node, as after an election or a stall, before silence counts again.
      this.leaderSinceMs = now;
    }
    for (const { nodeId, generation, verdict } of verdicts) {
      if (verdict !== "broken" && verdict !== "disconnected" && (massSilence || silenceEnded)) continue;
      const liveness: Liveness = verdict === "broken" || verdict === "expired" ? "DEAD" : "SUSPECT";
      const s = this.seen.get(nodeId);
      const mine = s && s.generation === generation;
      const judged: Judgement = {
        nodeId,
        generation,
        liveness,
        verdict,
        heardAgoMs: mine ? now - s.atMs : undefined,
        disconnectedAgoMs: mine && s.disconnectedAtMs !== undefined ? now - s.disconnectedAtMs : undefined,
        leadingForMs: now - this.leaderSinceMs,
        openStreams: this.streams.openStreams(nodeId, generation),
        timeoutMultiplier: m,
      };
      this.propose(nodeId, generation, liveness, judged);
    }
    // A verdict not yet applied (its proposal in flight, failed, or held
    // back by mass silence) is looked at again every checkEveryMs, as a
    // proposal that fails must be retried.
    this.wake.wakeAt(verdicts.length > 0 ? now + checkEveryMs : Math.max(now + checkEveryMs, next));
  }

  /** Once per heartbeat interval: how busy this process was meanwhile moves the timeouts' multiplier. */
  private readLocalHealth(now: number): void {
    if (now - this.lastBusyReadMs < this.options.heartbeatIntervalMs) return;
    this.lastBusyReadMs = now;
    const read = this.options.loopBusyShare;
    if (!read) return;
    const share = read();
    const before = this.multiplierAt(now);
    if (!this.health.observe(share)) return;
    if (this.health.multiplier < before) {
      this.heldMultiplier = before;
      this.heldUntilMs = now + this.options.leaseTtlMs * before;
    }
    this.options.onLocalHealth?.(this.health.multiplier, share);
  }

  /**
   * How long ago `nodeId` was last known alive by this leader: since its
   * connection broke if it did, else since its last heartbeat (undefined
   * when this leader never heard it). Where a move's time starts.
   */
  silentForMs(nodeId: string): number | undefined {
    const s = this.seen.get(nodeId);
    if (!s) return undefined;
    return this.scheduler.now() - (s.disconnectedAtMs ?? s.atMs);
  }

  private propose(nodeId: string, generation: number, liveness: Liveness, judged?: Judgement): void {
    const key = `${nodeId}/${liveness}`;
    if (this.proposing.has(key)) return;
    this.proposing.add(key);
    if (judged) this.options.onJudged?.(judged);
    this.coordinator
      .propose({ type: "setLiveness", nodeId, generation, liveness })
      .catch((err: unknown) => this.options.onError?.(err))
      .finally(() => this.proposing.delete(key));
  }
}
