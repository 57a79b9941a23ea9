/**
 * The leader's side of the cluster version (src/coordinator/formats.ts), as
 * etcd's leader raises its cluster version: every `everyMs` it asks every
 * member of the group, voters and learners alike (learners apply the log
 * too), which formats it understands, and proposes setClusterVersion once
 * all of them understand a higher version than the one applied. It needs
 * an answer from every member: one that does not answer may be running an
 * older release, so nothing is raised. It never proposes a lower version.
 * Once the version is as high as this member understands it stops asking
 * until it leads again: nothing could raise it further meanwhile, and an
 * idle leader is not woken every second for nothing.
 */
import type { RaftDriver } from "../../raft-runtime/driver.js";
import { type Scheduler, type TimerHandle, realScheduler } from "../../time/scheduler.js";
import type { SetClusterVersionResult } from "../command-results.js";
import { type Formats, highestCommonVersion } from "../formats.js";
import type { CoordinatorReplica } from "./coordinator-replica.js";
import type { MemberProbe } from "./member-probe.js";

export interface ClusterVersionMonitorOptions {
  readonly coordinator: CoordinatorReplica;
  readonly probe: MemberProbe;
  /** Every member's address as this member knows it now. */
  readonly peers: () => ReadonlyMap<string, string>;
  /** What this member's own binary understands. */
  readonly ownFormats: Formats;
  readonly everyMs?: number;
  readonly log: (fields: object, message: string) => void;
  readonly scheduler?: Scheduler;
}

export class ClusterVersionMonitor {
  private timer: TimerHandle | undefined;
  private checking = false;
  private readonly scheduler: Scheduler;

  constructor(private readonly options: ClusterVersionMonitorOptions) {
    this.scheduler = options.scheduler ?? realScheduler;
  }

  start(): void {
    if (this.timer) return;
    this.timer = this.scheduler.setInterval(() => {
      if (this.atHighest()) return this.stop();
      // A proposal that fails (leadership lost, no quorum) is tried again at the next round.
      this.check().catch(() => undefined);
    }, this.options.everyMs ?? 1_000);
    this.timer.unref?.();
  }

  stop(): void {
    this.scheduler.clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One round: ask every member, raise the version if all of them understand a higher one. Exposed for tests. */
  async check(): Promise<number | undefined> {
    if (this.checking) return undefined;
    this.checking = true;
    try {
      return await this.raiseIfAllUnderstand();
    } finally {
      this.checking = false;
    }
  }

  private atHighest(): boolean {
    return this.options.coordinator.local().clusterVersion >= highestCommonVersion([this.options.ownFormats]);
  }

  private async raiseIfAllUnderstand(): Promise<number | undefined> {
    const { coordinator, probe, peers, ownFormats } = this.options;
    const raft: RaftDriver = coordinator.raft;
    if (!raft.isLeader()) return undefined;
    // Already as high as this member understands: no answer could raise it, so nobody is asked (an idle group stays quiet).
    if (this.atHighest()) return undefined;
    const { confState, id: self } = raft.status();
    const members = [...new Set([...confState.voters, ...confState.learners])];
    const addresses = peers();
    const formats = await Promise.all(
      members.map(async (id) => (id === self ? ownFormats : addresses.has(id) ? (await probe.status(addresses.get(id)!))?.formats : undefined)),
    );
    if (formats.some((f) => f === undefined)) return undefined;
    const target = highestCommonVersion(formats as Formats[]);
    const current = coordinator.local().clusterVersion;
    if (target <= current || !raft.isLeader()) return undefined;
    const r = await coordinator.propose<SetClusterVersionResult>({ type: "setClusterVersion", version: target });
    if (r.changed) this.options.log({ clusterVersion: r.version, from: current, members }, "cluster version raised: every member understands its formats");
    return r.version;
  }
}
