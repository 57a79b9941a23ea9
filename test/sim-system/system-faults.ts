/**
 * The faults of the whole-product simulation, one roll per operator tick
 * (100 ms of virtual time): members crash, restart, pause (a stalled
 * process; sometimes the leader at once), partitions between members
 * (sometimes reporting the lost peers) and between meeting servers and
 * members, message loss and delay on both networks, and meeting servers
 * that crash, restart under the same id at once, freeze (and wake up as
 * zombies), deregister and exit (some with a planned stop: drain, hand
 * over at a deadline, deregister), or are drained (now, most with their
 * meetings moved, or with a deadline for hand-overs) and undrained; the
 * operator moves meetings (planned hand-overs, some with deadlines the
 * owner misses) and rebalances; gateways are cut from members and crash;
 * a member loses its disk and is replaced (member-replacement.ts).
 * Leadership moves, and often comes back to a member once the servers'
 * leases under the other leader have run out (sometimes while a third
 * member stalls); servers' extra watch streams open and close; a member's
 * event loop is saturated for a while (its detector stretches its
 * timeouts: local-health.ts).
 */
import * as grpc from "@grpc/grpc-js";
import { SeededRandom } from "../../src/raft/random.js";
import type { SystemSimulation } from "./system-simulation.js";

export class SystemFaults {
  readonly counts: Record<string, number> = {
    memberCrashes: 0,
    memberPauses: 0,
    partitions: 0,
    serverCuts: 0,
    serverCrashes: 0,
    quickRestarts: 0,
    freezes: 0,
    transfers: 0,
    leadsAgain: 0,
    extraStreams: 0,
    gatewayCuts: 0,
    gatewayCrashes: 0,
    leaves: 0,
    plannedMoves: 0,
    rebalances: 0,
    plannedStops: 0,
    saturations: 0,
  };
  /** Its own stream, so the other faults' schedules are those of the seeds before it was added. */
  private readonly saturationRng: SeededRandom;
  /** A third of the seeds are violent: faults ten times as often. */
  private readonly violence: number;

  constructor(
    private readonly sim: SystemSimulation,
    private on: boolean,
  ) {
    const rng = sim.rng;
    this.violence = rng.chance(0.33) ? 4 : 1;
    this.saturationRng = new SeededRandom((sim.options.seed ^ 0x5a7ca7ed) >>> 0);
    if (on) {
      sim.network.faults = {
        dropRate: rng.next() * 0.05,
        duplicateRate: rng.next() * 0.02,
        maxJitterMs: rng.intBelow(10),
        longDelayRate: rng.next() * 0.002,
        longDelayMs: 400 + rng.intBelow(2000),
      };
      sim.rpc.dropRate = rng.next() * 0.03;
      sim.rpc.replayRate = rng.next() * 0.02;
      sim.rpc.slowAnswerRate = rng.next() * 0.05;
      sim.rpc.maxJitterMs = rng.intBelow(15);
    }
  }

  stop(): void {
    this.on = false;
  }

  tick(): void {
    if (!this.on) return;
    const { rng, members, servers, network, rpc } = this.sim;
    const v = this.violence;
    const memberIds = [...members.keys()];
    for (const m of members.values()) {
      if (m.up && rng.chance(0.004 * v)) {
        this.sim.trace(`${m.id} crashes`);
        this.counts.memberCrashes!++;
        m.crash();
        for (const other of memberIds) if (other !== m.id && rng.chance(0.8)) network.reportDown(other, m.id);
      } else if (!m.up && rng.chance(0.1)) {
        this.sim.trace(`${m.id} starts`);
        void m.start();
      } else if (m.up && rng.chance(0.003 * v)) {
        this.pause(m.id);
      }
    }
    const leader = this.sim.leader();
    if (leader && rng.chance(0.003 * v)) this.pause(leader.id);
    const saturating = this.saturationRng;
    if (saturating.chance(0.004 * v)) {
      // Mostly the leader: its detector is the one judging.
      const m = leader && saturating.chance(0.7) ? leader : members.get(saturating.pick(memberIds))!;
      const ms = 300 + saturating.intBelow(4000);
      if (m.up) {
        this.counts.saturations!++;
        this.sim.trace(`${m.id} is saturated for ${ms} ms`);
        m.saturate(ms);
      }
    }
    if (rng.chance(0.004 * v)) {
      const shuffled = [...memberIds].sort(() => rng.next() - 0.5);
      const cut = 1 + rng.intBelow(memberIds.length - 1);
      this.counts.partitions!++;
      this.sim.trace(`partition ${shuffled.slice(0, cut).join(",")} | ${shuffled.slice(cut).join(",")}`);
      network.partition(shuffled.slice(0, cut), shuffled.slice(cut), rng.chance(0.5) ? 0.7 : 0);
    }
    if (network.isPartitioned() && rng.chance(0.03)) network.healAll();
    const serverIds = [...servers.keys()];
    if (rng.chance(0.004 * v)) {
      // A meeting server cut from one member, or from all but one.
      const s = rng.pick(serverIds);
      const cutFrom = rng.chance(0.5) ? [rng.pick(memberIds)] : memberIds.filter((_, i) => i !== rng.intBelow(memberIds.length));
      this.counts.serverCuts!++;
      this.sim.trace(`${s} cut from ${cutFrom.join(",")}`);
      for (const m of cutFrom) rpc.cutBoth(s, m);
    }
    if (rng.chance(0.003 * v)) {
      // A gateway cut from the member its feed is on, or from all but one.
      const g = rng.pick([...this.sim.gateways.keys()]);
      const cutFrom = rng.chance(0.5) ? [rng.pick(memberIds)] : memberIds.filter((_, i) => i !== rng.intBelow(memberIds.length));
      this.counts.gatewayCuts!++;
      this.sim.trace(`${g} cut from ${cutFrom.join(",")}`);
      for (const m of cutFrom) rpc.cutBoth(g, m);
    }
    for (const g of this.sim.gateways.values()) {
      if (g.up && rng.chance(0.0005 * v)) {
        this.sim.trace(`${g.id} crashes`);
        this.counts.gatewayCrashes!++;
        g.crash();
      } else if (!g.up && rng.chance(0.05)) g.start();
    }
    if (rpc.isCut() && rng.chance(0.03)) rpc.healAll();
    if (rng.chance(0.01 * v)) this.extraStream(rng.pick([...servers.values()]), rng.pick(memberIds), 20 + rng.intBelow(1500));
    for (const s of servers.values()) {
      if (s.up && rng.chance(0.001 * v)) {
        this.sim.trace(`${s.id} crashes`);
        this.counts.serverCrashes!++;
        s.crash();
      } else if (!s.up && rng.chance(0.05)) {
        this.sim.trace(`${s.id} starts`);
        s.start();
      } else if (s.up && rng.chance(0.001 * v)) {
        // The quick restart: a new process under the same id before anyone noticed the old one died.
        this.sim.trace(`${s.id} restarts at once`);
        this.counts.quickRestarts!++;
        s.start();
      } else if (s.up && rng.chance(0.0005 * v)) {
        this.sim.trace(`${s.id} deregisters and exits`);
        this.counts.leaves!++;
        s.leave();
      } else if (s.up && rng.chance(0.0005 * v)) {
        const deadlineMs = rng.intBelow(3000);
        this.sim.trace(`${s.id} stops within ${deadlineMs} ms (shutdown: drain, hand over, deregister)`);
        this.counts.plannedStops!++;
        s.leave(deadlineMs);
      } else if (s.up && rng.chance(0.001 * v)) {
        const ms = 300 + rng.intBelow(4000);
        this.sim.trace(`${s.id} freezes for ${ms} ms`);
        this.counts.freezes!++;
        s.freeze(ms);
      }
    }
    if (leader && rng.chance(0.01 * v)) {
      // A planned leadership change: leaders come and go without crashing, and often lead again later.
      const to = rng.pick(memberIds.filter((id) => id !== leader.id));
      this.counts.transfers!++;
      this.sim.trace(`leadership ${leader.id} → ${to}`);
      void leader.driver!.transferLeadership(to, 2000).catch(() => undefined);
      // Half the time it comes back once the nodes' leases have run out
      // under the other leader: what it heard in its earlier term is then
      // stale, and only a fresh lease keeps it from judging by it.
      if (rng.chance(0.7)) this.leadAgainLater(leader.id, 1600 + rng.intBelow(2400));
    }
    if (rng.chance(0.002 * v)) {
      const s = rng.pick(serverIds);
      this.sim.stats.drains!++;
      if (rng.chance(0.4)) {
        // A planned drain: at the deadline the meetings still there are handed over.
        const deadlineMs = 200 + rng.intBelow(3000);
        this.sim.trace(`drain ${s} with a deadline of ${deadlineMs} ms`);
        this.sim.operatorCall("DrainNode", { node_id: s, deadline_ms: deadlineMs }).catch(() => undefined);
      } else {
        this.sim.trace(`drain ${s}`);
        this.sim.operatorCall("DrainNode", { node_id: s, migrate: rng.chance(0.7) }).catch(() => undefined);
      }
    }
    if (rng.chance(0.004 * v)) {
      // Drained servers come back into use, or there would soon be nowhere to move to.
      const s = rng.pick(serverIds);
      this.sim.trace(`undrain ${s}`);
      this.sim.operatorCall("UndrainNode", { node_id: s }).catch(() => undefined);
    }
    if (this.sim.meetingCount() > 0 && rng.chance(0.02 * v)) {
      // A planned move, to a named server or to placement's choice, with a deadline the owner may miss.
      const meetingId = `meeting-${1 + rng.intBelow(this.sim.meetingCount())}`;
      const to = rng.chance(0.5) ? rng.pick(serverIds) : "";
      const timeoutMs = rng.chance(0.8) ? 2000 + rng.intBelow(8000) : 100 + rng.intBelow(400);
      this.counts.plannedMoves!++;
      this.sim.trace(`move ${meetingId}${to ? ` to ${to}` : ""} within ${timeoutMs} ms`);
      this.sim.operatorCall("MoveMeeting", { meeting_id: meetingId, to_node_id: to, timeout_ms: timeoutMs }).catch(() => undefined);
    }
    if (rng.chance(0.003 * v)) {
      this.counts.rebalances!++;
      this.sim.trace("rebalance");
      const request = { max_moves: 1 + rng.intBelow(3), max_in_flight: 1 + rng.intBelow(3), threshold_permille: 300 + rng.intBelow(600), timeout_ms: 1000 + rng.intBelow(5000) };
      this.sim.operatorCall("Rebalance", request).catch(() => undefined);
    }
    // Last: the member that loses its disk may be the leader the faults above acted on.
    if (rng.chance(0.001 * v)) this.sim.replacer.begin();
  }

  /**
   * A second WatchAssignments stream under a live server's id and
   * generation (a reconnect race, a tool), opened on some member and closed
   * soon: the server's liveness must follow the server, not this stream.
   */
  private extraStream(s: { id: string; processName: string; up: boolean; frozen: boolean; generation: number }, memberId: string, closeAfterMs: number): void {
    if (!s.up || s.frozen || s.generation === 0) return;
    const request = { node_id: s.id, generation: s.generation };
    this.counts.extraStreams!++;
    this.sim.trace(`an extra stream of ${s.id} on ${memberId} for ${closeAfterMs} ms`);
    const cancel = this.sim.rpc.openStream(
      s.processName,
      memberId,
      (sink) => {
        const core = this.sim.members.get(memberId)?.core;
        if (core) return core.agents.watch(request, sink);
        sink.end(grpc.status.UNAVAILABLE, `${memberId} is not running`);
        return () => undefined;
      },
      { data: () => undefined, end: () => undefined },
    );
    this.sim.world.setTimeout(cancel, closeAfterMs);
  }

  private leadAgainLater(id: string, afterMs: number): void {
    this.sim.world.setTimeout(() => {
      const now = this.sim.leader();
      if (!this.on || !now || now.id === id || !this.sim.members.get(id)?.up) return;
      this.counts.leadsAgain!++;
      this.sim.trace(`leadership ${now.id} → ${id} (it leads again)`);
      void now.driver!.transferLeadership(id, 2000).catch(() => undefined);
      // Sometimes a third member stalls just then: its streams reach the
      // new leader only when it runs again.
      const others = [...this.sim.members.keys()].filter((m) => m !== id && m !== now.id);
      if (others.length > 0 && this.sim.rng.chance(0.7)) this.pause(this.sim.rng.pick(others), 500 + this.sim.rng.intBelow(1500));
    }, afterMs);
  }

  private pause(id: string, ms = 100 + this.sim.rng.intBelow(rngSpan(this.sim.rng.chance(0.2)))): void {
    const m = this.sim.members.get(id)!;
    if (!m.up || m.pausedUntil > 0) return;
    this.sim.trace(`${id} pauses for ${ms} ms`);
    this.counts.memberPauses!++;
    m.pause(ms);
  }
}

function rngSpan(long: boolean): number {
  return long ? 5000 : 1000;
}
