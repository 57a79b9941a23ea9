/**
 * A member's disk is lost and the operator replaces the member, as
 * etcd's runbook does, through the real driver's API on the leader: the
 * member is gone for good (its process and disk), the operator removes it
 * from the group, then adds a fresh member (a new id, an empty disk) as a learner, let it catch up,
 * promote it. A fresh member never reuses the old id: an empty disk has
 * forgotten the votes its id cast. Meeting servers and gateways dial the
 * new member list from then on. Each step may be refused or lost under
 * the faults that go on meanwhile, and is retried until it takes.
 */
import type { NodeId } from "../../src/raft/index.js";
import type { SystemSimulation } from "./system-simulation.js";

type Phase = "idle" | "removing" | "adding-learner" | "promoting";

/** Operator ticks (100 ms) between two attempts at the same step. */
const RETRY_TICKS = 5;

export class MemberReplacer {
  private phase: Phase = "idle";
  private target: NodeId = "";
  private replacement: NodeId = "";
  private ticks = 0;
  begun = 0;
  completed = 0;

  constructor(private readonly sim: SystemSimulation) {}

  get busy(): boolean {
    return this.phase !== "idle";
  }

  /** Where the replacement under way stands, for a liveness report. */
  get state(): string {
    return `${this.phase}: ${this.target} → ${this.replacement || "not yet started"}`;
  }

  /** Starts replacing a random voter, when the group has at least three and no replacement is under way. */
  begin(): void {
    if (this.phase !== "idle") return;
    const leader = this.sim.leader();
    if (!leader) return;
    const voters = leader.driver!.core.raft.confState().voters;
    if (voters.length < 3) return;
    this.target = this.sim.rng.pick(voters);
    this.sim.trace(`${this.target} loses its disk (and its process): the operator replaces it`);
    this.sim.loseMember(this.target);
    this.phase = "removing";
    this.ticks = 0;
    this.begun++;
  }

  /** One operator tick: the next step, retried now and then until it takes. */
  tick(): void {
    if (this.phase === "idle") return;
    const leader = this.sim.leader();
    if (!leader) return;
    const driver = leader.driver!;
    const { voters, learners } = driver.core.raft.confState();
    const attempt = this.ticks++ % RETRY_TICKS === 0;
    switch (this.phase) {
      case "removing":
        if (voters.includes(this.target) || learners.includes(this.target)) {
          if (attempt) void driver.remove(this.target).catch(() => undefined);
          return;
        }
        this.replacement = this.sim.addReplacement(this.target, this.begun);
        this.sim.trace(`${this.target} removed; ${this.replacement} starts with an empty disk`);
        this.phase = "adding-learner";
        return;
      case "adding-learner":
        if (learners.includes(this.replacement) || voters.includes(this.replacement)) {
          this.phase = "promoting";
          return;
        }
        if (attempt) void driver.addLearner(this.replacement, `sim:${this.replacement}`).catch(() => undefined);
        return;
      case "promoting":
        if (voters.includes(this.replacement)) {
          this.sim.trace(`${this.replacement} is a voter`);
          this.phase = "idle";
          this.completed++;
          return;
        }
        // The driver refuses a promotion until the learner has caught up.
        if (attempt) void driver.promote(this.replacement).catch(() => undefined);
        return;
    }
  }
}
