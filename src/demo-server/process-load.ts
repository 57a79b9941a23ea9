/**
 * This process's CPU use, for the heartbeats' load figures: the CPU time
 * it used since the previous sample over the wall time since then, as a
 * share of the machine (all its cores), 0..1.
 */
import { availableParallelism } from "node:os";

export class ProcessCpu {
  private lastUsage = process.cpuUsage();
  private lastAt = process.hrtime.bigint();
  private readonly cores = Math.max(1, availableParallelism());

  sample(): number {
    const usage = process.cpuUsage();
    const at = process.hrtime.bigint();
    const usedMicros = usage.user - this.lastUsage.user + (usage.system - this.lastUsage.system);
    const wallMicros = Number(at - this.lastAt) / 1000;
    this.lastUsage = usage;
    this.lastAt = at;
    if (wallMicros <= 0) return 0;
    return Math.min(1, Math.max(0, usedMicros / wallMicros / this.cores));
  }
}
