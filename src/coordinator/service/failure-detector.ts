/**
 * The leader's failure detector. Heartbeats are not Raft writes: the leader
 * keeps them in memory and proposes only changes of liveness. A node whose
 * connection breaks (its watch stream, reported by whichever member held
 * it) is suspect at once and dead after a short grace unless it comes back;
 * a node that goes silent with its connections open is dead when its lease
 * runs out. A new leader gives every node a full lease before judging it.
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
 */
import type { Liveness } from "../model.js";
import type { CoordinatorReplica } from "./coordinator-replica.js";

export interface FailureDetectorOptions {
  readonly leaseTtlMs: number;
  readonly heartbeatIntervalMs: number;
  /** After a disconnect, how long a node has to reconnect before it is declared dead. */
  readonly disconnectGraceMs: number;
  readonly checkEveryMs: number;
  /** Default 0.5: see the class comment. */
  readonly massSilenceFraction?: number;
  /** Default 3: with fewer overdue nodes, each is judged on its own. */
  readonly massSilenceMinNodes?: number;
  readonly onError?: (err: unknown) => void;
  /** Told when mass silence starts (overdue, live) and when it ends (0, live). */
  readonly onMassSilence?: (overdue: number, live: number) => void;
}

interface Seen {
  generation: number;
  atMs: number;
  /** When its last connection broke, if it has not reconnected since. */
  disconnectedAtMs?: number;
}

export class FailureDetector {
  private readonly seen = new Map<string, Seen>();
  private timer: NodeJS.Timeout | undefined;
  private leaderSinceMs = 0;
  private lastCheckMs = 0;
  /** Liveness proposals in flight, so a slow commit is not proposed twice. */
  private readonly proposing = new Set<string>();
  private inMassSilence = false;

  constructor(
    private readonly coordinator: CoordinatorReplica,
    private readonly options: FailureDetectorOptions,
  ) {}

  /** This member became leader: judge nobody before a full lease from now. */
  startLeading(): void {
    this.stopLeading();
    this.leaderSinceMs = Date.now();
    this.lastCheckMs = this.leaderSinceMs;
    this.seen.clear();
    this.timer = setInterval(() => this.check(), this.options.checkEveryMs);
  }

  stopLeading(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.seen.clear();
    this.proposing.clear();
  }

  /** A heartbeat (or a fresh watch stream) from `nodeId` at `generation`. */
  heard(nodeId: string, generation: number): void {
    this.seen.set(nodeId, { generation, atMs: Date.now() });
    const node = this.coordinator.local().getNode(nodeId);
    if (this.timer && node && node.generation === generation && node.liveness === "SUSPECT") {
      this.propose(nodeId, generation, "ALIVE");
    }
  }

  /** The node's connection broke: suspect now, dead after the grace unless it returns. */
  disconnected(nodeId: string, generation: number): void {
    const node = this.coordinator.local().getNode(nodeId);
    // A broken stream of an older incarnation says nothing about the
    // current one (it re-registered and has its own stream): recording it
    // would erase what was heard from the current generation.
    if (!node || node.generation !== generation) return;
    const s = this.seen.get(nodeId);
    const now = Date.now();
    const heardAt = s && s.generation === generation ? s.atMs : now;
    this.seen.set(nodeId, { generation, atMs: heardAt, disconnectedAtMs: now });
    if (this.timer && node.liveness === "ALIVE") this.propose(nodeId, generation, "SUSPECT");
  }

  /**
   * A gateway could not reach the node. Only a hint: a node heard from
   * within the last heartbeat interval is left alone (the gateway may be the
   * one in trouble); one that has missed a heartbeat is treated as
   * disconnected, so it is dead after the grace unless it is heard again.
   */
  upstreamFailed(nodeId: string): void {
    const node = this.coordinator.local().getNode(nodeId);
    if (!this.timer || !node || node.liveness !== "ALIVE") return;
    const s = this.seen.get(nodeId);
    const heardAt = s && s.generation === node.generation ? s.atMs : this.leaderSinceMs;
    if (Date.now() - heardAt > this.options.heartbeatIntervalMs) this.disconnected(nodeId, node.generation);
  }

  private check(): void {
    const now = Date.now();
    const stalled = now - this.lastCheckMs > Math.max(4 * this.options.checkEveryMs, 250);
    this.lastCheckMs = now;
    if (stalled) {
      // This process was paused (GC, a large snapshot, a loaded machine):
      // heartbeats that arrived meanwhile are still queued, so silence says
      // nothing about the nodes. Judge nobody before a full lease from now,
      // as after an election.
      this.leaderSinceMs = now;
      return;
    }
    const { leaseTtlMs, heartbeatIntervalMs, disconnectGraceMs } = this.options;
    const verdicts: { nodeId: string; generation: number; verdict: "broken" | "expired" | "late" }[] = [];
    let live = 0;
    for (const node of this.coordinator.local().listNodes()) {
      if (node.liveness === "DEAD") continue;
      live++;
      const s = this.seen.get(node.nodeId);
      const heardAt = s && s.generation === node.generation ? s.atMs : 0;
      // Since this member leads, or since it last heard the node, whichever is later.
      const last = Math.max(heardAt, this.leaderSinceMs);
      const brokeAt = s && s.generation === node.generation ? s.disconnectedAtMs : undefined;
      const { nodeId, generation } = node;
      if (brokeAt !== undefined && now - brokeAt > disconnectGraceMs && brokeAt >= this.leaderSinceMs) {
        verdicts.push({ nodeId, generation, verdict: "broken" });
      } else if (now - last > leaseTtlMs) {
        verdicts.push({ nodeId, generation, verdict: "expired" });
      } else if (node.liveness === "ALIVE" && now - last > 2 * heartbeatIntervalMs) {
        verdicts.push({ nodeId, generation, verdict: "late" });
      }
    }
    const overdue = verdicts.filter((v) => v.verdict !== "broken").length;
    const massSilence = overdue >= (this.options.massSilenceMinNodes ?? 3) && overdue > live * (this.options.massSilenceFraction ?? 0.5);
    if (massSilence !== this.inMassSilence) {
      this.inMassSilence = massSilence;
      this.options.onMassSilence?.(massSilence ? overdue : 0, live);
    }
    for (const { nodeId, generation, verdict } of verdicts) {
      if (verdict === "broken") this.propose(nodeId, generation, "DEAD");
      else if (massSilence) continue;
      else this.propose(nodeId, generation, verdict === "expired" ? "DEAD" : "SUSPECT");
    }
  }

  private propose(nodeId: string, generation: number, liveness: Liveness): void {
    const key = `${nodeId}/${liveness}`;
    if (this.proposing.has(key)) return;
    this.proposing.add(key);
    this.coordinator
      .propose({ type: "setLiveness", nodeId, generation, liveness })
      .catch((err: unknown) => this.options.onError?.(err))
      .finally(() => this.proposing.delete(key));
  }
}
