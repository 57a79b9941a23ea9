/**
 * Replaces one voter at runtime, as an operator does after losing a disk:
 * remove it, retire it for good, add a fresh member (new id, empty disk) as
 * a learner, let it catch up, promote it. A fresh member never reuses the
 * old id: an empty disk has forgotten the votes its id cast, and members
 * that have not yet applied the removal would still count them.
 * Every step is a proposal that may be dropped under faults and is retried;
 * the cycle runs while the other faults go on.
 */
import { ConfChangeType, MemoryStorage, type NodeId, RaftError, encodeConfChange } from "../../src/raft/index.js";
import { SimMember, type Simulation } from "./simulation.js";

type Phase = "idle" | "removing" | "adding-learner" | "promoting";

export class MembershipChanger {
  private phase: Phase = "idle";
  private target: NodeId = "";
  private replacement: NodeId = "";
  private since = 0;
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
    const voters = leader.raw!.raft.voters;
    if (voters.length < 3) return;
    this.target = this.sim.rng.pick(voters);
    this.phase = "removing";
    this.since = this.sim.now;
  }

  private propose(type: ConfChangeType, nodeId: NodeId): void {
    const leader = this.sim.leader();
    if (!leader || (this.sim.now - this.since) % 10 !== 0) return;
    try {
      leader.raw!.proposeConfChange(encodeConfChange({ type, nodeId }));
    } catch (err) {
      if (!(err instanceof RaftError)) throw err;
    }
  }

  step(): void {
    if (this.phase === "idle") return;
    const leader = this.sim.leader();
    if (!leader) return;
    const { voters, learners } = leader.raw!.raft.confState();
    switch (this.phase) {
      case "removing": {
        if (voters.includes(this.target) || learners.includes(this.target)) {
          this.propose(ConfChangeType.RemoveNode, this.target);
          return;
        }
        // Gone from the group: its machine and disk are lost.
        const old = this.sim.members.get(this.target)!;
        this.sim.crash(old);
        this.retired.add(this.target);
        this.replacement = `${this.target.split("r")[0]}r${++this.generation}`;
        const fresh = new SimMember(this.replacement, new MemoryStorage());
        this.sim.members.set(this.replacement, fresh);
        this.sim.start(fresh);
        this.phase = "adding-learner";
        return;
      }
      case "adding-learner":
        if (learners.includes(this.replacement) || voters.includes(this.replacement)) {
          this.phase = "promoting";
          return;
        }
        this.propose(ConfChangeType.AddLearner, this.replacement);
        return;
      case "promoting": {
        if (voters.includes(this.replacement)) {
          this.phase = "idle";
          this.completedCycles++;
          return;
        }
        const fresh = this.sim.members.get(this.replacement)!;
        // Promote only once caught up, so the new voter does not stall commits.
        if (fresh.raw && fresh.applied + 2 >= leader.raw!.raft.log.committed) {
          this.propose(ConfChangeType.AddVoter, this.replacement);
        }
        return;
      }
    }
  }
}
