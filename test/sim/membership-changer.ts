/**
 * Replaces one voter at runtime, as an operator does after losing a disk,
 * through the real driver's API (remove, addLearner, promote): remove it,
 * retire it for good, add a fresh member (new id, empty disk) as a learner,
 * let it catch up, promote it. A fresh member never reuses the old id: an
 * empty disk has forgotten the votes its id cast, and members that have not
 * yet applied the removal would still count them. Every step may be
 * refused or dropped under faults and is retried; the cycle runs while the
 * other faults go on.
 */
import type { NodeId } from "../../src/raft/index.js";
import { MemoryDurableStorage } from "../../src/raft-runtime/memory-durable-storage.js";
import type { Simulation } from "./simulation.js";

type Phase = "idle" | "removing" | "adding-learner" | "promoting";

/** Ticks between two attempts at the same step. */
const RETRY_TICKS = 10;

export class MembershipChanger {
  private phase: Phase = "idle";
  private target: NodeId = "";
  private replacement: NodeId = "";
  private ticks = 0;
  private generation = 0;
  /** Removed members: down for good, never restarted. */
  private readonly retired = new Set<NodeId>();
  completedCycles = 0;

  constructor(private readonly sim: Simulation) {}

  isRetired(id: NodeId): boolean {
    return this.retired.has(id);
  }

  begin(): void {
    if (this.phase !== "idle") return;
    const leader = this.sim.leader();
    if (!leader) return;
    const voters = leader.driver!.core.raft.voters;
    if (voters.length < 3) return;
    this.target = this.sim.rng.pick(voters);
    this.phase = "removing";
    this.ticks = 0;
  }

  step(): void {
    if (this.phase === "idle") return;
    const leader = this.sim.leader();
    if (!leader) return;
    const driver = leader.driver!;
    const { voters, learners } = driver.core.raft.confState();
    const attempt = this.ticks++ % RETRY_TICKS === 0;
    switch (this.phase) {
      case "removing": {
        if (voters.includes(this.target) || learners.includes(this.target)) {
          if (attempt) void driver.remove(this.target).catch(() => undefined);
          return;
        }
        // Gone from the group: its machine and disk are lost.
        const old = this.sim.members.get(this.target)!;
        this.sim.crash(old);
        old.disk.wipe();
        this.retired.add(this.target);
        this.replacement = `${this.target.split("r")[0]}r${++this.generation}`;
        const fresh = this.sim.addMember(this.replacement, new MemoryDurableStorage());
        void this.sim.start(fresh);
        this.phase = "adding-learner";
        return;
      }
      case "adding-learner":
        if (learners.includes(this.replacement) || voters.includes(this.replacement)) {
          this.phase = "promoting";
          return;
        }
        if (attempt) void driver.addLearner(this.replacement, `sim:${this.replacement}`).catch(() => undefined);
        return;
      case "promoting": {
        if (voters.includes(this.replacement)) {
          this.phase = "idle";
          this.completedCycles++;
          return;
        }
        // The driver refuses a promotion until the learner has caught up.
        if (attempt) void driver.promote(this.replacement).catch(() => undefined);
        return;
      }
    }
  }
}
