/**
 * When `convene start` restarts a child that died: after 0.5 s, doubling
 * with each death in a row up to 30 s, so a child that crashes as soon as
 * it starts (a port taken, a broken data directory) is retried ever more
 * slowly instead of spinning. A child that stayed up 30 s or more before it
 * died counts as healthy: its next restart is after 0.5 s again. Pure: the
 * supervisor passes how long the child ran.
 */
export interface RestartPolicyOptions {
  readonly initialMs: number;
  readonly maxMs: number;
  /** A child that ran at least this long before dying starts a new streak. */
  readonly healthyAfterMs: number;
}

export const restartDefaults: RestartPolicyOptions = { initialMs: 500, maxMs: 30_000, healthyAfterMs: 30_000 };

export class RestartBackoff {
  /** Deaths in a row, each within healthyAfterMs of its start. */
  private streak = 0;

  constructor(private readonly options: RestartPolicyOptions = restartDefaults) {}

  /** The delay before restarting a child that ran `upMs` before it exited; counts the death. */
  next(upMs: number): number {
    if (upMs >= this.options.healthyAfterMs) this.streak = 0;
    const delay = Math.min(this.options.maxMs, this.options.initialMs * 2 ** Math.min(this.streak, 30));
    this.streak++;
    return delay;
  }

  /** Restarts in the current streak (1 for the first death after a healthy run). */
  get restarts(): number {
    return this.streak;
  }
}
