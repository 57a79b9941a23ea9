/**
 * `convene start` keeps its children running: one that dies (kill -9, a
 * crash) is started again with the same arguments after a backoff
 * (restart-policy.ts), so a killed demo server comes back under its node
 * id (it registers again and gets a new generation), a killed member
 * rejoins from its data directory, a killed gateway serves again. Each
 * death and restart is printed in the terminal, with the last lines of the
 * child's log. Call `watch` from the cluster's exit listener once the
 * cluster is up; `stop()` before stopping the cluster, so that children
 * ended on purpose are not started again.
 */
import { lastLines, renderLogLine } from "./log-tail.js";
import type { LocalCluster, RunningProcess } from "./local-cluster.js";
import { RestartBackoff, type RestartPolicyOptions, restartDefaults } from "./restart-policy.js";

/** What the supervisor needs of time; tests pass a fake. */
export interface SupervisorClock {
  now(): number;
  setTimeout(run: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realClock: SupervisorClock = {
  now: () => Date.now(),
  setTimeout: (run, ms) => setTimeout(run, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** Local wall-clock time as HH:MM:SS, for terminal lines. */
export function clockTime(ms: number): string {
  const d = new Date(ms);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, "0")).join(":");
}

function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

export class Supervisor {
  private readonly backoffs = new Map<string, RestartBackoff>();
  private readonly pending = new Map<string, unknown>();
  private stopped = false;

  constructor(
    private readonly cluster: Pick<LocalCluster, "spawn">,
    private readonly print: (text: string) => void,
    private readonly options: { policy?: RestartPolicyOptions; clock?: SupervisorClock; logLines?: number } = {},
  ) {}

  private get clock(): SupervisorClock {
    return this.options.clock ?? realClock;
  }

  /** A child exited: reports it and schedules its restart (unless stopping). */
  watch(proc: RunningProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.stopped) return;
    const now = this.clock.now();
    const backoff = this.backoffOf(proc.id);
    const delay = backoff.next(now - proc.startedAt);
    const how = signal ? `was killed (${signal})` : `exited with code ${code}`;
    const streak = backoff.restarts > 1 ? ` (${backoff.restarts} deaths in a row: waiting longer each time)` : "";
    const lines = [
      `${clockTime(now)}  ${proc.id} (pid ${proc.child.pid}) ${how} after ${seconds(now - proc.startedAt)}; restarting it in ${seconds(delay)}${streak}.`,
    ];
    const tail = lastLines(proc.logFile, this.options.logLines ?? 10);
    if (tail.length > 0) lines.push(`  the last lines of ${proc.logFile}:`, ...tail.map((line) => `  | ${renderLogLine(line)}`));
    if (proc.kind === "demo-server") lines.push(`  its meetings move to the other meeting servers; reload or press "Try again" in the meeting page`);
    if (proc.kind === "member") lines.push("  the other members keep the cluster running while a majority is up");
    this.print(lines.join("\n"));
    this.schedule(proc, delay);
  }

  /** No more restarts; pending ones are cancelled. */
  stop(): void {
    this.stopped = true;
    for (const handle of this.pending.values()) this.clock.clearTimeout(handle);
    this.pending.clear();
  }

  private backoffOf(id: string): RestartBackoff {
    let backoff = this.backoffs.get(id);
    if (!backoff) this.backoffs.set(id, (backoff = new RestartBackoff(this.options.policy ?? restartDefaults)));
    return backoff;
  }

  private schedule(proc: RunningProcess, delay: number): void {
    this.pending.set(
      proc.id,
      this.clock.setTimeout(() => this.restart(proc), delay),
    );
  }

  private restart(proc: RunningProcess): void {
    this.pending.delete(proc.id);
    if (this.stopped) return;
    let next: RunningProcess;
    try {
      next = this.cluster.spawn(proc);
    } catch (err) {
      // Not even spawned (its log file cannot be opened, say): reported, and tried again later.
      const delay = this.backoffOf(proc.id).next(0);
      this.print(`${clockTime(this.clock.now())}  ${proc.id} could not be started (${err instanceof Error ? err.message : String(err)}); trying again in ${seconds(delay)}.`);
      this.schedule(proc, delay);
      return;
    }
    const after = proc.kind === "demo-server" ? `; it registers again as ${proc.id}` : "";
    this.print(`${clockTime(this.clock.now())}  ${proc.id} restarted as pid ${next.child.pid} on ${proc.address}${after}`);
  }
}
